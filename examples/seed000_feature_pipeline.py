# feature_pipeline.py from seed 000, with `joblib` replaced by `forklift` and nothing else
# changed but the first import (FORKLIFT_EXAMPLE_SCALE shortens sleeps in the test suite).
import _scale  # noqa: F401
import os
import time
import re
from collections import Counter
from pathlib import Path
from forklift import Parallel, delayed, Memory
cache = Memory("./feature_cache", verbose=0)
# --- Create sample text files ---
SAMPLE_DIR = Path("sample_texts")
SAMPLE_DIR.mkdir(exist_ok=True)
sample_texts = {
"python.txt": "Python is a high-level programming language. Python emphasises readability.",
"data.txt": "Data science uses statistics and programming. Data analysis reveals patterns.",
"web.txt": "Web development creates websites and applications. The web uses HTML CSS JavaScript.",
"ai.txt": "Artificial intelligence mimics human thinking. Machine learning trains models on data.",
"cloud.txt": "Cloud computing provides on-demand resources. Cloud services scale automatically.",
}
for fname, text in sample_texts.items():
    (SAMPLE_DIR / fname).write_text(text * 50) # Make files large enough to matter
@cache.cache
def extract_features(filepath: str) -> dict:
    """Extract word frequency features from a text file (cached)."""
    text = Path(filepath).read_text().lower()
    words = re.findall(r'\b[a-z]{3,}\b', text)
    top_words = dict(Counter(words).most_common(10))
    time.sleep(0.3) # Simulate expensive NLP processing
    return {"file": Path(filepath).name, "word_count": len(words), "top_words": top_words}
def run_pipeline(data_dir: Path) -> list[dict]:
    files = [str(f) for f in data_dir.glob("*.txt")]
    print(f"Processing {len(files)} files in parallel...")
    start = time.perf_counter()
    results = Parallel(n_jobs=-1, verbose=10)(
        delayed(extract_features)(f) for f in files
    )
    elapsed = time.perf_counter() - start
    print(f"Done in {elapsed:.2f}s")
    return results
features = run_pipeline(SAMPLE_DIR)
for feat in features:
    top3 = list(feat["top_words"].keys())[:3]
    print(f" {feat['file']:15s} words={feat['word_count']:,} top={top3}")
