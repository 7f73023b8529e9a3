"""Write configs/<task>/<retriever>.yaml: one experiment file per task x retriever.

Each file overrides only what differs from the class defaults, which are the LaMP paper's
hyper-parameters (flan-t5-base, max input 512 tokens, lr 5e-5, batch 16 per device, k=1).
Run from the repository root: `python configs/generate.py`.
"""

from pathlib import Path

from lamp_pl.tasks import get_task, task_names

RETRIEVERS = {"contriever": "dense Contriever (facebook/contriever), the paper's best retriever",
              "bm25": "BM25 over whitespace tokens, as the official code",
              "recency": "the user's newest profile items",
              "random": "random profile items (seeded)",
              "none": "no profile: the non-personalized baseline (k = 0)"}

for name in task_names():
    task = get_task(name)
    # 10 epochs for generation tasks as in the LaMP paper; classification gets more.
    epochs = 10 if task.metric_kind == "generation" else 20
    for retriever, what in RETRIEVERS.items():
        data = f"  task: {name}\n  data_dir: data/lamp\n"
        data += "  k: 0\n" if retriever == "none" else ""
        data += f"  retrieval:\n    retriever: {retriever}\n" if retriever != "contriever" else ""
        text = (f"# {name} ({task.description}), {what}.\n"
                f"# lamp-pl fit --config configs/{name}/{retriever}.yaml [--config configs/trainer/gpu.yaml]\n"
                f"trainer:\n  max_epochs: {epochs}\ndata:\n{data}")
        path = Path("configs") / name / f"{retriever}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
