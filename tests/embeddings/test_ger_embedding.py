"""GER refined embedding: normalisation, PCA, modes, the user part, and the backbone hook."""

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from lucidrec.data.sequences import Ragged
from lucidrec.embeddings.ger import GERConfig, GERItemEmbedding
from lucidrec.embeddings.ger.normalise import zscore
from lucidrec.embeddings.pca import fit_pca, reduce_table
from lucidrec.models import make_backbone
from lucidrec.train.trainer import scorer_for


def make(mode="refined", n=20, m=4, dim=12, users=3, extra=0, **config):
    rng = np.random.default_rng(1)
    guided = np.vstack([np.zeros((1, m)), rng.normal(size=(n, m))]).astype(np.float32)
    reduced = np.vstack([np.zeros((1, dim - m)), rng.normal(size=(n, dim - m))]).astype(np.float32)
    return GERItemEmbedding(guided, dim, extra, reduced=None if mode == "guided" else reduced, n_users=users,
                            config=GERConfig(mode=mode, **config), guided_scale=0.5)


def test_zscore_per_attribute_with_flagged_mean_fallback():
    raw = np.array([[1.0, 10.0], [3.0, 10.0], [np.nan, np.nan], [5.0, 10.0]])
    missing = np.array([False, False, False, True])  # row 3 has no text: ignored even though scored
    out = zscore(raw, missing)
    assert out.missing.tolist() == [False, False, True, True] and out.n_missing == 2
    np.testing.assert_allclose(out.z[:2, 0], [-1.0, 1.0])
    np.testing.assert_allclose(out.z[:, 1], 0.0)  # zero spread -> std 1, all at the mean
    np.testing.assert_allclose(out.z[2:], 0.0)  # the fallback: the attribute mean
    np.testing.assert_allclose(out.mean, [2.0, 10.0])


def test_pca_shapes_orthonormal_and_padding_row():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(41, 16)).astype(np.float32)
    reduced, pca = reduce_table(base, 10)
    assert reduced.shape == (41, 10) and np.all(reduced[0] == 0)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(10), atol=1e-10)
    assert np.all(np.diff(pca.explained) <= 1e-12) and 0 < pca.explained.sum() <= 1
    np.testing.assert_allclose(reduced[1:].mean(axis=0), 0, atol=1e-5)  # centred
    wide = fit_pca(base[1:4], 5)  # 3 rows (rank 2 once centred) < 5 components: zero-padded
    assert wide.components.shape == (5, 16) and np.all(wide.components[3:] == 0)
    assert wide.explained[2:] == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("mode", ["refined", "guided", "reduced"])
def test_modes_shapes_and_blocks(mode):
    emb = make(mode, extra=1)
    ids = torch.tensor([[0, 3, 21], [5, 6, 7]])  # 21 = the special (mask) token
    out = emb(ids)
    assert out.shape == (2, 3, 12) and emb.table().shape == (21, 12)
    g = emb.guided[torch.tensor([5, 6, 7])]
    if mode == "reduced":
        assert torch.all(out[1, :, :4] == 0)
    else:
        torch.testing.assert_close(out[1, :, :4], emb.alpha * 0.5 * g)
    assert not torch.allclose(out[0, 2], torch.zeros(12))  # the special token has its own vector
    assert ("lift" in dict(emb.named_modules())) == (mode == "guided")


def test_item_guided_part_frozen_user_part_trainable():
    emb = make()
    names = dict(emb.named_parameters())
    assert "guided" not in names and "guided" in dict(emb.named_buffers())
    assert {"alpha", "reduced"} <= set(names) and "user_delta.weight" not in names
    model = make_backbone("sasrec", {"hidden": 12, "max_len": 6, "layers": 1}, emb)
    seqs = torch.tensor([[0, 0, 1, 2, 3, 4], [0, 5, 6, 7, 8, 9]])
    states = model(seqs, torch.tensor([0, 2]))  # the trainer's call: forward(inputs, users)
    loss = (states @ model.item_table().T).logsumexp(-1).mean()
    loss.backward()
    assert model.state_hook is emb.user_part  # the backbone registers the embedding's user part as its hook
    assert "state_hook.user_delta.weight" in dict(model.named_parameters())
    grad = emb.user_part.user_delta.weight.grad
    assert grad[0].abs().sum() > 0 and grad[2].abs().sum() > 0 and grad[1].abs().sum() == 0  # only batch users
    assert emb.alpha.grad is not None and emb.reduced.grad is not None
    frozen = make(base={"train_reduced": False}, guided={"learn_alpha": False})
    assert set(dict(frozen.named_parameters())) == set()
    assert set(dict(frozen.user_part.named_parameters())) == {"user_delta.weight"}


def test_history_profile_is_causal_windowed_and_recency_weighted():
    emb = make(user={"window": 2, "recency_decay": 0.5})
    seqs = torch.tensor([[0, 1, 2, 3]])
    profile = emb.user_part.history_profile(seqs)[0]
    g = emb.guided
    scale = emb.user_part.user_scale
    torch.testing.assert_close(profile[0], torch.zeros(4))  # padding only
    torch.testing.assert_close(profile[1], scale * g[1])
    torch.testing.assert_close(profile[2], scale * (g[2] + 0.5 * g[1]) / 1.5)
    torch.testing.assert_close(profile[3], scale * (g[3] + 0.5 * g[2]) / 1.5)  # window of 2: item 1 dropped
    # Causal: changing a later item never changes an earlier position's profile.
    other = emb.user_part.history_profile(torch.tensor([[0, 1, 2, 9]]))[0]
    torch.testing.assert_close(other[:3], profile[:3])


def test_hook_sets_the_state_guided_block_for_known_and_cold_users():
    emb = make()
    with torch.no_grad():
        emb.user_part.user_delta.weight[1] = 0.3
    model = make_backbone("sasrec", {"hidden": 12, "max_len": 6, "layers": 1}, emb).eval()
    history = Ragged.from_lists([[1, 2, 3], [1, 2, 3]])
    with torch.no_grad():
        vectors = model.user_vectors(history, np.array([1, -1]))  # a known and an unknown user
        plain = model.encode(model.inference_input(history))[:, -1]
        profile = emb.user_part.history_profile(model.inference_input(history))[:, -1]
    torch.testing.assert_close(vectors[1, :4], profile[1])  # cold: the history alone
    torch.testing.assert_close(vectors[0, :4], profile[0] + emb.user_part.user_multiplier * 0.3)
    torch.testing.assert_close(vectors[:, 4:], plain[:, 4:])
    scorer = scorer_for(model)  # the evaluator's path passes the user ids through
    torch.testing.assert_close(scorer.user_state(history, np.array([1, -1])), vectors)
    reduced = make("reduced")
    states = torch.randn(1, 3, 12)
    assert torch.equal(reduced.state_hook()(states, torch.tensor([[1, 2, 3]]), None), states)


def test_llm_prior_replaces_history_profile_for_users_that_have_one():
    prior = np.array([[1, 2, 3, 4], [np.nan] * 4, [0, 0, 0, 1]], dtype=np.float32)
    rng = np.random.default_rng(1)
    guided = np.vstack([np.zeros((1, 4)), rng.normal(size=(20, 4))]).astype(np.float32)
    emb = GERItemEmbedding(guided, 8, reduced=np.zeros((21, 4), np.float32), n_users=3,
                           config=GERConfig(user={"init": "llm"}), user_prior=prior)
    seqs = torch.tensor([[3, 4], [3, 4], [3, 4]])
    out = emb.user_part.user_guided(seqs, torch.tensor([0, 1, 2]))
    torch.testing.assert_close(out[0, 1], torch.tensor([1.0, 2, 3, 4]))
    torch.testing.assert_close(out[1], emb.user_part.history_profile(seqs)[1])  # no prior (NaN) -> history
    torch.testing.assert_close(out[2, 0], torch.tensor([0.0, 0, 0, 1]))


def test_user_reduced_base_projects_the_frozen_base_state():
    from lucidrec.embeddings.id_table import IdEmbedding

    torch.manual_seed(0)
    base = make_backbone("sasrec", {"hidden": 10, "max_len": 4, "layers": 1, "dropout": 0.5}, IdEmbedding(20, 10))
    components = np.linalg.qr(np.random.default_rng(0).normal(size=(10, 8)))[0].T  # (8, 10) orthonormal rows
    emb = make(user={"reduced": "base"})
    emb.user_part.attach_base(base, components)
    model = make_backbone("sasrec", {"hidden": 12, "max_len": 6, "layers": 1}, emb)
    model.train()
    assert not base.training and not any(p.requires_grad for p in base.parameters())
    seqs = torch.tensor([[0, 0, 1, 2, 3, 4]])
    states = model(seqs, torch.tensor([0]))
    with torch.no_grad():
        expected = base.encode(seqs[:, -4:])[:, -1] @ torch.as_tensor(components, dtype=torch.float32).T
    torch.testing.assert_close(states[0, -1, 4:], expected[0])
    torch.testing.assert_close(states[0, -1, :4], emb.user_part.user_guided(seqs, torch.tensor([0]))[0, -1])
    # The backbone's own layers get no gradient here, which DistributedDataParallel must be told.
    states.sum().backward()
    unused = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert any(name.startswith("blocks") or "attn" in name for name in unused) and model.bypasses_encoder
    assert not make_backbone("sasrec", {"hidden": 12, "max_len": 6, "layers": 1}, make()).bypasses_encoder


def test_an_api_key_in_the_llm_config_is_refused_so_it_never_reaches_config_json():
    with pytest.raises(ValidationError, match="api_key_env"):
        GERConfig(scorer={"kind": "llm", "llm": {"backend": "openai", "model": "m", "api_key": "sk-secret"}})
    assert GERConfig(scorer={"kind": "llm", "llm": {"backend": "openai", "model": "m", "api_key_env": "MY_KEY"}}).scorer.llm["api_key_env"] == "MY_KEY"


def test_weights_of_runs_from_before_the_state_hook_load_into_todays_model(tmp_path):
    from lucidrec.train import checkpoint

    emb = make()
    with torch.no_grad():
        emb.user_part.user_delta.weight.normal_()
    model = make_backbone("sasrec", {"hidden": 12, "max_len": 6, "layers": 1}, emb)
    old = {("items." + k[len("state_hook."):] if k.startswith("state_hook.") else k): v
           for k, v in model.state_dict().items()}  # the names such a run folder holds
    assert "items.user_delta.weight" in old and not any(k.startswith("state_hook.") for k in old)
    torch.save({"model": old}, tmp_path / "best.pt")
    fresh = make_backbone("sasrec", {"hidden": 12, "max_len": 6, "layers": 1}, make())
    checkpoint.load_weights(tmp_path / "best.pt", fresh)
    assert torch.equal(fresh.state_hook.user_delta.weight, emb.user_part.user_delta.weight)
