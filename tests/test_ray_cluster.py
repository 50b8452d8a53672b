"""A sweep on a Ray cluster of two nodes on this machine (ray.cluster_utils.Cluster): one node is
killed while trials run on both, and the sweep still completes every trial, exactly."""

import json
import threading
import time

import numpy as np
import pytest

import duetto

SMALL = {"hidden": (32, 32), "batch_size": 32, "learning_starts": 64, "buffer_size": 2000}
STEPS, EVERY = 1200, 300


def _state(path):
    import io
    import zipfile

    with zipfile.ZipFile(path) as z, np.load(io.BytesIO(z.read("state.npz"))) as npz:
        return {k: npz[k] for k in npz.files}


def _final(run_dir):
    return sorted((run_dir / "checkpoints").glob("step-*.ckpt"))[-1]


@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # Ray forks and execs at once
@pytest.mark.slow  # two Ray nodes and four trials on two cores: about a minute
def test_sweep_over_two_nodes_completes_when_one_node_is_killed(tmp_path, capsys):
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()  # a local Ray another test of this session left up (a no-op otherwise)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = cluster.add_node(num_cpus=1)
    try:
        ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
        cluster.wait_for_nodes()
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        out = tmp_path / "sweep"
        removed = []

        def kill_node_once_both_run():
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                started = [d for d in out.glob("seed-*") if list(d.glob("checkpoints/*.ckpt"))]
                if len(started) >= 2:  # one trial on each node, both checkpointed
                    cluster.remove_node(worker, allow_graceful=False)
                    removed.append(time.monotonic())
                    return
                time.sleep(0.05)

        watcher = threading.Thread(target=kill_node_once_both_run, daemon=True)
        watcher.start()
        rows = duetto.sweep(
            "sac",
            "Pendulum-v1",
            seeds=[0, 1, 2, 3],
            space=SMALL,
            steps=STEPS,
            eval_every=EVERY,
            eval_episodes=1,
            out=out,
        )
        watcher.join()
        assert removed, "the node was not killed while two trials ran"
        assert not worker.any_processes_alive()  # its raylet and workers were killed
        printed = capsys.readouterr().out
        assert "training 4 trials, 2 at a time" in printed
        assert "its worker failed; starting it again from its last checkpoint" in printed
        assert len(rows) == 1 and len(rows[0]["returns"]) == 4 and rows[0]["failed"] == 0
        for seed in range(4):
            ev = json.loads((out / f"seed-{seed}" / "eval.json").read_text())
            assert ev["step"] == STEPS
    finally:
        ray.shutdown()
        cluster.shutdown()

    local = tmp_path / "local"
    agent = duetto.SAC("Pendulum-v1", seed=0, run_dir=local, **SMALL)
    agent.learn(STEPS, eval_every=EVERY, eval_episodes=1)
    agent.close()
    a, b = _state(_final(out / "seed-0")), _state(_final(local))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
