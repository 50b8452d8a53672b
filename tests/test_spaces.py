"""Observation and action spaces beyond Box vectors (issue 15): Dict, images, Discrete,
MultiDiscrete and MultiBinary observations for every algorithm; MultiDiscrete and MultiBinary
actions for PPO and MDPO. Unit tests of each reading against a hand computation, then a short
learning check per space on the tiny envs below, each with a threshold that no policy blind to
the observation reaches."""

import math

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import duetto
from duetto.actor_critic import explore, log_prob_entropy, observe
from duetto.algorithms import AGENTS, ALGORITHMS
from duetto.config import build_config
from duetto.data.normalize import stats_init
from duetto.envs.gym import ActionEdge, env_spec, make_vector_env
from duetto.envs.jaxenv import gymnasium_space, make_jax_env
from duetto.envs.spaces import ObsEdge, layout_size, observation_layout
from duetto.envs.spec import EnvSpec
from duetto.errors import DuettoError
from duetto.nets.encoder import CNN, CNNS, ObsEncoder

EPISODE = 8  # steps per episode of the envs below: a perfect policy returns 8


class CueEnv(gym.Env):
    """Each step shows a cue (one of `n`) in the observation; the action that answers it pays
    1 (the multi-action variants pay the fraction of sub-actions right). Episodes of 8 steps.

    observation "discrete": Discrete(4, start=1), the cue permuted; "dict": the cue's three bits
    in a Discrete, a MultiBinary and a MultiDiscrete key (beside a value it does not need),
    with a Box of noise; "image": a 36×36 uint8 picture bright on the cue's half; "box": the
    cue's sign. Without reading the observation a policy returns at most 2 (discrete), 1
    (dict), 4 (image, multi_discrete) or 5.3 (binary)."""

    def __init__(self, observation: str = "discrete", action: str = "discrete"):
        self.kind, self.action_kind = observation, action
        self.n = {"discrete": 4, "dict": 8, "image": 2, "box": 2}[observation]
        self.observation_space = {
            "discrete": gym.spaces.Discrete(4, start=1),
            "dict": gym.spaces.Dict(
                {
                    "cue": gym.spaces.Discrete(2),
                    "bit": gym.spaces.MultiBinary(1),
                    "pair": gym.spaces.MultiDiscrete([3, 2], start=[0, 5]),
                    "noise": gym.spaces.Box(-1, 1, (2,), np.float32),
                }
            ),
            "image": gym.spaces.Box(0, 255, (36, 36, 1), np.uint8),
            "box": gym.spaces.Box(-1, 1, (1,), np.float32),
        }[observation]
        self.action_space = {
            "discrete": gym.spaces.Discrete(self.n),
            "multi_discrete": gym.spaces.MultiDiscrete([3, 2]),
            "binary": gym.spaces.MultiBinary(3),
            "box": gym.spaces.Box(-1, 1, (1,), np.float32),
        }[action]

    def _observe(self):
        self.cue = int(self.np_random.integers(self.n))
        if self.kind == "discrete":
            return (self.cue * 3) % 4 + 1
        if self.kind == "dict":
            noise = self.np_random.uniform(-1, 1, 2).astype(np.float32)
            pair = np.array([self.np_random.integers(3), 5 + self.cue // 4])
            bit = np.array([self.cue % 2], np.int8)
            return {"cue": self.cue // 2 % 2, "bit": bit, "pair": pair, "noise": noise}
        if self.kind == "image":
            image = np.zeros((36, 36, 1), np.uint8)
            image[:, 18 * self.cue : 18 * (self.cue + 1)] = 255
            return image
        return np.array([1.0 if self.cue else -1.0], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._observe(), {}

    def step(self, action):
        assert self.action_space.contains(action), action
        if self.action_kind == "discrete":
            reward = float(action == self.cue)
        elif self.action_kind == "multi_discrete":
            reward = float(np.mean(action == ((2, 0) if self.cue else (0, 1))))
        elif self.action_kind == "binary":
            reward = float(np.mean(action == ((1, 0, 1) if self.cue else (0, 1, 1))))
        else:  # the cue's point in [-0.875, 0.875], as closely as possible
            reward = 1.0 - abs(float(action[0]) - (self.cue - (self.n - 1) / 2) / (self.n / 2))
        self.t += 1
        return self._observe(), reward, False, self.t >= EPISODE, {}


def encode(space, obs, encoder="nature", n=1):
    """The encoder's reading of n observations of `space` (with fresh parameters)."""
    edge = ObsEdge(space)
    flat = jnp.asarray(edge(obs, n))
    module = ObsEncoder(edge.layout, encoder)
    params = jax.jit(module.init)(jax.random.PRNGKey(0), flat)
    return np.asarray(jax.jit(module.apply)(params, flat)), params


# ---- reading observations -------------------------------------------------------------------


def test_discrete_observations_are_one_hot_from_their_start():
    out, params = encode(gym.spaces.Discrete(4, start=1), np.array([3, 1]), n=2)
    np.testing.assert_array_equal(out, [[0, 0, 1, 0], [1, 0, 0, 0]])
    assert params == {}  # nothing to learn: a plain network after the one-hot


def test_multi_discrete_observations_are_concatenated_one_hots():
    space = gym.spaces.MultiDiscrete([2, 3], start=[0, 1])
    out, _ = encode(space, np.array([1, 3]))
    np.testing.assert_array_equal(out, [[0, 1, 0, 0, 1]])


def test_multi_binary_observations_are_floats():
    out, _ = encode(gym.spaces.MultiBinary(3), np.array([1, 0, 1], np.int8))
    np.testing.assert_array_equal(out, [[1.0, 0.0, 1.0]])


def test_images_are_scaled_to_unit_interval_before_the_cnn():
    space = gym.spaces.Box(0, 255, (36, 36, 3), np.uint8)
    image = np.random.default_rng(0).integers(0, 256, (2, 36, 36, 3), dtype=np.uint8)
    flat, _ = encode(space, image, "flatten", n=2)
    np.testing.assert_allclose(flat, image.reshape(2, -1) / 255.0, rtol=1e-6)
    out, params = encode(space, image, n=2)
    convs, width = CNNS["nature"]
    cnn = jax.jit(CNN(convs, width).apply)
    by_hand = cnn({"params": params["params"]["cnn"]}, jnp.asarray(image / 255.0, jnp.float32))
    np.testing.assert_allclose(out, by_hand, rtol=1e-5, atol=1e-6)


def test_dict_parts_follow_the_space_order():
    space = gym.spaces.Dict(
        {"pos": gym.spaces.Box(-5, 5, (2,), np.float32), "cell": gym.spaces.Discrete(3)}
    )
    assert list(space.spaces) == ["cell", "pos"]  # Gymnasium sorts the keys; SB3 reads so too
    assert [s.key for s in observation_layout(space)] == ["cell", "pos"]
    obs = {"pos": np.array([0.5, -2.0], np.float32), "cell": 2}
    assert ObsEdge(space).one(obs).tolist() == [2.0, 0.5, -2.0]
    out, _ = encode(space, obs)
    np.testing.assert_array_equal(out, [[0, 0, 1, 0.5, -2.0]])


def test_nature_cnn_gives_its_features_and_refuses_small_images_in_one_line():
    space = gym.spaces.Box(0, 255, (3, 40, 40), np.uint8)  # channels first
    out, params = encode(space, np.zeros((5, 3, 40, 40), np.uint8), n=5)
    assert out.shape == (5, 512)
    assert params["params"]["cnn"]["Conv_0"]["kernel"].shape == (8, 8, 3, 32)
    small = gym.spaces.Box(0, 255, (35, 35, 3), np.uint8)
    with pytest.raises(DuettoError) as e:
        encode(small, np.zeros((1, 35, 35, 3), np.uint8))
    message = str(e.value)
    assert "\n" not in message and "35×35" in message and "36×36" in message
    assert "encoder='minatar'" in message and "encoder='flatten'" in message
    out, _ = encode(small, np.zeros((1, 35, 35, 3), np.uint8), "minatar")
    assert out.shape == (1, 128)
    in_dict = observation_layout(gym.spaces.Dict({"image": space}))  # SB3's CombinedExtractor
    module = ObsEncoder(in_dict)
    shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), jnp.zeros((1, 4800)))
    assert shapes["params"]["cnn_image"]["Dense_0"]["kernel"].shape == (64, 256)


def test_channels_first_images_are_read_as_channels_last_ones():
    image = np.random.default_rng(1).integers(0, 256, (2, 40, 44, 3), dtype=np.uint8)
    last, params = encode(gym.spaces.Box(0, 255, (40, 44, 3), np.uint8), image, n=2)
    first = ObsEncoder(observation_layout(gym.spaces.Box(0, 255, (3, 40, 44), np.uint8)))
    flat = jnp.asarray(image.transpose(0, 3, 1, 2).reshape(2, -1), jnp.float32)
    np.testing.assert_allclose(jax.jit(first.apply)(params, flat), last, rtol=1e-5, atol=1e-6)


def test_minatar_encoder_reads_three_dimensional_boxes_as_images():
    space = gym.spaces.Box(0, 1, (10, 10, 4), np.float32)  # gymnax's MinAtar grids
    grid = np.zeros((2, 10, 10, 4), np.float32)
    out, params = encode(space, grid, "minatar", n=2)
    assert out.shape == (2, 128)
    assert params["params"]["cnn"]["Conv_0"]["kernel"].shape == (3, 3, 4, 16)
    assert params["params"]["cnn"]["Dense_0"]["kernel"].shape == (8 * 8 * 16, 128)
    flat, params = encode(space, grid, "nature", n=2)  # SB3's rule: not a uint8 image
    assert flat.shape == (2, 400) and params == {}


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_box_observation_networks_are_the_plain_ones(algo):
    """A Box observation gets no encoder: the parameters are those of the plain networks, so
    checkpoints and results of Box runs are unchanged."""
    module = ALGORITHMS[algo]
    config = build_config(module.CONFIG, algo, {}, {})
    spec = env_spec(make_vector_env("Pendulum-v1", 1), algo, module.ACTION_SPACES)
    assert spec.obs_layout  # described, ...
    plain = jax.jit(lambda k: module.init(k, EnvSpec(spec.obs_dim, 1), config, 1))
    laid = jax.jit(lambda k: module.init(k, spec, config, 1))
    plain, laid = plain(jax.random.PRNGKey(0)), laid(jax.random.PRNGKey(0))
    leaves = jax.tree_util.tree_leaves_with_path
    assert [p for p, _ in leaves(plain)] == [p for p, _ in leaves(laid)]  # ... not encoded
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(laid), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_network_reads_images_through_its_own_encoder(algo):
    module = ALGORITHMS[algo]
    space = gym.spaces.Dict(
        {"pixels": gym.spaces.Box(0, 255, (36, 36, 1), np.uint8), "cell": gym.spaces.Discrete(3)}
    )
    layout = observation_layout(space)
    spec = EnvSpec(
        layout_size(layout), 2, discrete="box" not in module.ACTION_SPACES, obs_layout=layout
    )
    config = build_config(module.CONFIG, algo, {}, {"hidden": (16,), "cnn_features": 8})
    # Shapes only (traced, not compiled): which parameters the networks have.
    state = jax.eval_shape(lambda k: module.init(k, spec, config, 1), jax.random.PRNGKey(0))
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(state)]
    cnns = [p for p in paths if "cnn_pixels" in p]
    networks = {p[: p.index("['params']['encoder']")] for p in cnns if "opt" not in p}
    # actor and critic(s) each with a CNN of its own (their targets and old copies too)
    assert len(networks) >= 2 and all("['encoder']" in p for p in cnns)
    assert not [p for p in paths if "Dense" in p and "encoder" not in p and "net" not in p]
    action = jax.eval_shape(
        lambda s: module.act(s, jnp.zeros((3, spec.obs_dim)), jax.random.PRNGKey(1), False), state
    )
    assert action.shape[0] == 3


def shaped_state(spec, config):
    """A PPO state of shapes only (nothing compiled): what reads only its spec and config."""
    init = ALGORITHMS["ppo"].init
    return jax.eval_shape(lambda k: init(k, spec, config, 2), jax.random.PRNGKey(0))


def test_ppo_normalises_only_the_box_columns():
    space = gym.spaces.Dict(
        {"cell": gym.spaces.Discrete(3), "pos": gym.spaces.Box(-9, 9, (1,), np.float32)}
    )
    spec = EnvSpec(2, 2, discrete=True, obs_layout=observation_layout(space))
    config = build_config(ALGORITHMS["ppo"].CONFIG, "ppo", {}, {"normalize_obs": True})
    state = shaped_state(spec, config).replace(obs_stats=stats_init((2,)))
    obs = jnp.asarray([[2.0, 4.0], [0.0, 6.0]])
    _, seen = observe(state, obs, True)
    np.testing.assert_array_equal(seen[:, 0], [2.0, 0.0])  # the index, as it was
    np.testing.assert_allclose(seen[:, 1], [-1.0, 1.0], atol=1e-3)  # (x − 5) / 1


# ---- MultiDiscrete and MultiBinary actions --------------------------------------------------


def test_multi_categorical_log_prob_and_entropy_by_hand():
    spec = EnvSpec(1, 2, nvec=(2, 3))
    logits = np.array([[0.5, -0.5, 1.0, 0.0, -1.0]], np.float32)
    action = np.array([[1, 2]])
    log_prob, entropy = log_prob_entropy(spec, jnp.asarray(logits), jnp.asarray(action))
    p0 = np.exp(logits[0, :2]) / np.exp(logits[0, :2]).sum()
    p1 = np.exp(logits[0, 2:]) / np.exp(logits[0, 2:]).sum()
    assert float(log_prob[0]) == pytest.approx(math.log(p0[1]) + math.log(p1[2]), rel=1e-5)
    by_hand = -(p0 * np.log(p0)).sum() - (p1 * np.log(p1)).sum()
    assert float(entropy[0]) == pytest.approx(by_hand, rel=1e-5)


def test_bernoulli_log_prob_and_entropy_by_hand():
    spec = EnvSpec(1, 3, binary=True)
    logits = np.array([[2.0, -1.0, 0.0]], np.float32)
    action = np.array([[1, 1, 0]])
    log_prob, entropy = log_prob_entropy(spec, jnp.asarray(logits), jnp.asarray(action))
    p = 1 / (1 + np.exp(-logits[0]))
    by_hand = math.log(p[0]) + math.log(p[1]) + math.log(1 - p[2])
    assert float(log_prob[0]) == pytest.approx(by_hand, rel=1e-5)
    h = -(p * np.log(p) + (1 - p) * np.log(1 - p)).sum()
    assert float(entropy[0]) == pytest.approx(h, rel=1e-5)


def test_mdpo_kl_of_independent_categoricals_and_bits_by_hand():
    from duetto.algorithms.mdpo import kl_divergence

    def kl(p, q):
        return float((p * np.log(p / q)).sum())

    def softmax(x):
        return np.exp(x) / np.exp(x).sum()

    new, old = np.array([0.3, -0.2, 1.0, 0.1, 0.0]), np.array([0.0, 0.0, 0.5, 0.5, -1.0])
    value = kl_divergence(EnvSpec(1, 2, nvec=(2, 3)), jnp.asarray(new), jnp.asarray(old))
    by_hand = kl(softmax(new[:2]), softmax(old[:2])) + kl(softmax(new[2:]), softmax(old[2:]))
    assert float(value) == pytest.approx(by_hand, rel=1e-5)
    p, q = 1 / (1 + np.exp(-new[:3])), 1 / (1 + np.exp(-old[:3]))
    value = kl_divergence(EnvSpec(1, 3, binary=True), jnp.asarray(new[:3]), jnp.asarray(old[:3]))
    by_hand = sum(kl(np.array([a, 1 - a]), np.array([b, 1 - b])) for a, b in zip(p, q, strict=True))
    assert float(value) == pytest.approx(by_hand, rel=1e-5)


@pytest.mark.parametrize("kind", ["multi_discrete", "binary"])
def test_exploration_samples_the_policy(kind):
    """Sampled sub-actions are as frequent as the policy's probabilities say."""
    spec = EnvSpec(1, 2, nvec=(2, 3)) if kind == "multi_discrete" else EnvSpec(1, 2, binary=True)
    state = shaped_state(spec, build_config(ALGORITHMS["ppo"].CONFIG, "ppo", {}, {}))
    logits = jnp.asarray([0.4, -0.4, 1.0, 0.0, -1.0] if kind == "multi_discrete" else [1.0, -2.0])
    n = 40_000
    noise = ALGORITHMS["ppo"].exploration_noise(state, jax.random.PRNGKey(2), (n,))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("duetto.actor_critic.distribution", lambda s, p, o: jnp.tile(logits, (n, 1)))
        action, log_prob = explore(state, jnp.zeros((n, 1)), noise)
    action = np.asarray(action)
    if kind == "multi_discrete":
        freq = [(action[:, 0] == 1).mean(), (action[:, 1] == 0).mean()]
        expected = [jax.nn.softmax(logits[:2])[1], jax.nn.softmax(logits[2:])[0]]
    else:
        freq, expected = action.mean(axis=0), jax.nn.sigmoid(logits)
    np.testing.assert_allclose(freq, expected, atol=0.01)
    assert action.dtype == np.int32 and bool(jnp.all(log_prob <= 0))


def test_action_edge_gives_multi_actions_in_the_env_space():
    space = gym.spaces.MultiDiscrete([3, 4], start=[1, -1])
    out = ActionEdge(space)(np.array([[2, 0], [0, 3]]), 2)
    np.testing.assert_array_equal(out, [[3, -1], [1, 2]])
    assert all(space.contains(a) for a in out)
    bits = gym.spaces.MultiBinary([2, 2])
    out = ActionEdge(bits)(np.array([[1, 0, 0, 1]]), 1)
    assert out.shape == (1, 2, 2) and bits.contains(out[0])


def test_spaces_duetto_cannot_read_get_one_message():
    tuple_obs = gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Discrete(3)))
    nested = gym.spaces.Dict({"inner": gym.spaces.Dict({"x": gym.spaces.Discrete(2)})})
    for space, words in ((tuple_obs, "Dict"), (nested, "Dict inside a Dict")):
        with pytest.raises(DuettoError, match=words):
            observation_layout(space, "sac")
    with pytest.raises(DuettoError, match="ppo and mdpo take them"):
        duetto.SAC(CueEnv("box", "multi_discrete"), seed=0, run_dir=False)


def test_a_replay_that_cannot_fit_is_refused_before_it_is_made():
    """Images stay float32 in the replay: a big buffer of them is one clear message, on both
    loops, not a crash of the allocation."""
    with pytest.raises(DuettoError, match=r"needs [\d,.]+ GiB.*lower buffer_size") as e:
        duetto.SAC(CueEnv("image", "box"), seed=0, run_dir=False, buffer_size=10**8)
    assert "\n" not in str(e.value)
    with pytest.raises(DuettoError, match="for each of 2 runs"):
        duetto.SAC("gymnax:Pendulum-v1", seeds=[0, 1], run_dir=False, buffer_size=10**12)


def test_gymnax_discrete_observations_are_read_one_hot_and_dicts_refused():
    jax_env = make_jax_env("gymnax:FrozenLake-misc", "ppo", ("discrete",))
    (segment,) = jax_env.spec.obs_layout
    assert (segment.kind, segment.nvec, jax_env.spec.obs_dim) == ("discrete", (16,), 1)
    spaces = __import__("gymnax.environments.spaces", fromlist=["Dict"])
    with pytest.raises(DuettoError, match="Box or Discrete observations"):
        gymnasium_space(spaces.Dict({"x": spaces.Discrete(2)}), spaces, "gymnax:Mine")


# ---- learning -------------------------------------------------------------------------------

PPO_TINY = {
    "n_envs": 4,
    "n_steps": 32,
    "batch_size": 64,
    "n_epochs": 4,
    "learning_rate": 3e-3,
    "gamma": 0.0,
    "hidden": (32, 32),
}


def learned(agent, steps):
    agent.learn(steps, eval_every=steps, eval_episodes=20)
    return agent.last_eval["return_mean"]


@pytest.mark.parametrize(
    ("observation", "steps"), [("discrete", 768), ("dict", 768), ("image", 384)]
)
def test_ppo_learns_from_each_observation_space(observation, steps):
    agent = duetto.PPO(CueEnv(observation), seed=0, run_dir=False, **PPO_TINY)
    assert learned(agent, steps) >= 7.0  # blind: at most 2 (discrete), 1 (dict) or 4 (image)


@pytest.mark.parametrize(
    ("algo", "action"),
    [
        ("ppo", "multi_discrete"),
        ("ppo", "binary"),
        pytest.param("mdpo", "multi_discrete", marks=pytest.mark.slow),
        pytest.param("mdpo", "binary", marks=pytest.mark.slow),
    ],
)
def test_on_policy_learns_multi_actions(algo, action):
    settings = dict(PPO_TINY)
    if algo == "mdpo":  # MDPO has no minibatched policy: its full-batch steps, its value fit
        settings.update(normalize_obs=False, normalize_reward=False, policy_steps=10)
    agent = AGENTS[algo](CueEnv("box", action), seed=0, run_dir=False, **settings)
    assert learned(agent, 768) >= 7.0  # blind: at most 4 (multi_discrete) or 5.3 (binary)


def test_sac_learns_from_dict_observations():
    agent = duetto.SAC(
        CueEnv("dict", "box"),
        seed=0,
        run_dir=False,
        hidden=(32, 32),
        batch_size=64,
        learning_starts=100,
        buffer_size=5_000,
        learning_rate=3e-3,
        gamma=0.0,
    )
    assert learned(agent, 600) >= 7.0  # blind: at most 4 (always 0)


def test_dict_agent_predicts_and_survives_save_and_load(tmp_path):
    agent = duetto.PPO(CueEnv("dict"), seed=0, run_dir=False, **PPO_TINY).learn(256)
    env = CueEnv("dict")
    obs = [env.reset(seed=i)[0] for i in range(4)]
    single, _ = agent.predict(obs[0])
    batch = {k: np.stack([o[k] for o in obs]) for k in obs[0]}
    actions, _ = agent.predict(batch)
    assert actions.shape == (4,) and actions[0] == single
    loaded = duetto.load(agent.save(tmp_path / "dict.ckpt"))
    np.testing.assert_array_equal(loaded.predict(batch)[0], actions)
    for a, b in zip(jax.tree.leaves(agent.state), jax.tree.leaves(loaded.state), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(DuettoError, match="keys"):
        agent.predict({"cue": 1})


def test_fused_ppo_learns_from_one_hot_observations():
    """gymnax's FrozenLake (slippery, 4×4): its Discrete position one-hot. A random policy
    reaches the goal about 1.5 % of the time, the best one about 74 %."""
    agent = duetto.PPO(
        "gymnax:FrozenLake-misc",
        seed=0,
        run_dir=False,
        n_envs=16,
        n_steps=64,
        batch_size=256,
        n_epochs=4,
        learning_rate=3e-3,
        ent_coef=0.01,
    )
    assert learned(agent, 20_480) >= 0.4


@pytest.mark.slow
def test_fused_ppo_learns_minatar_breakout_with_the_minatar_cnn():
    """gymnax's Breakout-MinAtar (10×10×4 grids) through MinAtar's CNN: 6.5 at 100k steps
    (98 s on 2 cores); a random policy returns about 0.6."""
    agent = duetto.PPO(
        "gymnax:Breakout-MinAtar",
        seed=0,
        run_dir=False,
        n_envs=16,
        n_steps=64,
        batch_size=256,
        n_epochs=4,
        encoder="minatar",
    )
    assert learned(agent, 100_000) >= 3.0
    assert "encoder" in agent.state.params["actor"]["params"]
