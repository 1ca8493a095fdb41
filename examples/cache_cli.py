# Looking into a cache folder from the command line: forklift cache list / info / prune.
import subprocess
import sys

from forklift import Memory

memory = Memory("./cli_cache", verbose=0)
square = memory.cache(lambda x: x * x)
for i in range(5):
    square(i)

for command in (["list"], ["info"], ["prune", "--max-items", "2"], ["list"]):
    print("$ forklift cache", " ".join(command), "./cli_cache")
    subprocess.run([sys.executable, "-m", "forklift", "cache", command[0], "./cli_cache", *command[1:]], check=True)
