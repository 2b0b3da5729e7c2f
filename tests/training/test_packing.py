"""Block attention: a packed sequence gives each document the logits it has alone, with position ids
restarting per document and no attention mask (sdpa and eager); passing a mask of ones breaks it."""
import pytest
import torch

from training.data import GlobalOrder, PackedShards, step_batch

LENGTHS = [7, 12, 5]


def packed_and_alone(model):
    torch.manual_seed(1)
    docs = [torch.randint(3, 49152, (n,)) for n in LENGTHS]
    ids = torch.cat(docs)[None]
    positions = torch.cat([torch.arange(n) for n in LENGTHS])[None]
    with torch.no_grad():
        packed = model(input_ids=ids, position_ids=positions, use_cache=False).logits[0]
        alone = torch.cat([model(input_ids=d[None], use_cache=False).logits[0] for d in docs])
        masked = model(input_ids=ids, position_ids=positions, attention_mask=torch.ones_like(ids), use_cache=False).logits[0]
    return packed, alone, masked


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_logits_equal_each_document_alone(tiny_model, attention):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation=attention).eval()
    packed, alone, masked = packed_and_alone(model)
    assert torch.allclose(packed, alone, atol=1e-5), (packed - alone).abs().max()
    # an explicit all-ones mask turns per-document masking off: later documents then see earlier ones
    first = LENGTHS[0]
    assert torch.allclose(masked[:first], alone[:first], atol=1e-5)
    assert (masked[first:] - alone[first:]).abs().max() > 1e-3


def test_samples_restart_positions_and_never_predict_across_documents(cpt_shards):
    data = PackedShards(cpt_shards, "train")
    multi = next(i for i in range(len(data)) if len(data.segments(i)[0]) > 1)
    x = data.sample(multi)
    segs, _ = data.segments(multi)
    starts = [0, *list(torch.tensor(segs).cumsum(0)[:-1].tolist())]
    assert all(x["position_ids"][s] == 0 for s in starts) and all(x["labels"][s] == -100 for s in starts)
    assert (x["labels"] != -100).sum() == 128 - len(starts) - (segs[-1] - 1 if data.segments(multi)[1] else 0)


def test_the_global_batch_is_the_same_for_any_number_of_ranks(cpt_shards):
    data = PackedShards(cpt_shards, "train")
    order = GlobalOrder(len(data), seed=5)
    one = step_batch(data, order, 40, micro=2, accum=4, world=1, rank=0)
    two = [step_batch(data, order, 40, micro=2, accum=2, world=2, rank=r) for r in (0, 1)]
    rows = lambda batches: sorted(tuple(r.tolist()) for b in batches for r in b["input_ids"])  # noqa: E731
    assert one.samples == two[0].samples == two[1].samples and one.targets == two[0].targets
    assert rows(one.micro) == rows(two[0].micro + two[1].micro)
    assert GlobalOrder(len(data), 5).take(len(data) - 2, 4)[2:] == GlobalOrder(len(data), 5).epoch_order(1)[:2].tolist()
