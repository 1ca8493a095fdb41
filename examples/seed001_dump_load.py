# "Serializing object" from seed 001, with `joblib` replaced by `forklift`. The seed's snippet
# dumps `weights` before defining it; here the list it defines is what gets saved.
from forklift import dump, load
x = [1, 2, 3, 4, 5, 6, 7, 8, 9]
weights = x
dump(weights, 'x.joblib')  # Save model
weights = load('x.joblib') # Load model
print(weights)
