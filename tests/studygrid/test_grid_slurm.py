"""`--launcher slurm`: the points run as one submitit job array (submitit's own local executor
here, where there is no Slurm), and the sbatch script asks for the resources requested."""

from __future__ import annotations

from pathlib import Path

from grid_helpers import grid_args, run_grid, table

from lamp_pl.studygrid.launchers import SlurmOptions, sbatch_script
from lamp_pl.studygrid.state import read_state


def test_slurm_array_through_the_local_executor(tiny_t5, data_root, tmp_path):
    out = tmp_path / "grid"
    slurm = ["--launcher", "slurm", "--cluster", "local", "--partition", "debug", "--time_min", "17"]
    slurm += ["--gpus_per_point", "0", "--cpus_per_point", "1", "--sbatch", "qos=low", "account=lamp", "--no_plots"]
    run_grid(grid_args(tiny_t5, data_root, tmp_path, out, "--retriever", "bm25", "random", *slurm))
    rows = table(out / "results.csv")
    assert [row["retriever"] for row in rows] == ["bm25", "random"] and all(row["rouge-1"] for row in rows)
    states = [read_state(out / f"retriever={name}") for name in ("bm25", "random")]
    assert all(state.done for state in states)
    # Each point ran in a submitit job: its folder holds the job's pickled result and logs.
    assert len(list((out / "slurm").glob("*/*_result.pkl"))) == 2
    script = (out / "slurm" / "array.sbatch").read_text()
    for line in ("#SBATCH --partition=debug", "#SBATCH --time=17", "#SBATCH --cpus-per-task=1", "#SBATCH --qos=low"):
        assert line in script
    assert (
        "#SBATCH --account=lamp" in script and "#SBATCH --array=0-1%2" in script
    )  # parallelism capped at the array size


def test_sbatch_script_carries_gpus_memory_and_parallelism(tmp_path: Path):
    options = SlurmOptions("gpu", 240, gpus_per_point=2, mem_gb=64, array_parallelism=3, sbatch={"constraint": "h100"})
    script = sbatch_script(tmp_path, options, count=12)
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --time=240",
        "#SBATCH --gpus-per-node=2",
        "#SBATCH --mem=64GB",
        "#SBATCH --array=0-11%3",
        "#SBATCH --constraint=h100",
    ):
        assert line in script, script
    assert "submitit.core._submit" in script
    parameters = options.executor_parameters()
    assert parameters["slurm_partition"] == "gpu" and parameters["gpus_per_node"] == 2
    assert parameters["slurm_additional_parameters"] == {"constraint": "h100"}
