"""What a person reads from ``lucidrec explain``: dataset ids, 1-based ranks, own values, one colour code."""

import numpy as np
import pandas as pd

from lucidrec.data.dataset import Dataset, ItemCatalog
from lucidrec.data.prepare import prepare
from lucidrec.explain.report import explain_run, format_text, to_dict


def _data_for(model_items: int = 30, users: int = 5):
    """SequenceData over the fixture's 30 items whose dataset ids ("sku-N") are not their row indices."""
    rows = [(f"user{u}", f"sku-{100 + i}", i) for u in range(users) for i in range(model_items)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "seq_pos"])
    catalog = ItemCatalog(pd.DataFrame({"item_id": [f"sku-{100 + i}" for i in range(model_items)],
                                        "title": [f"Title {i}" for i in range(model_items)]}))
    data = prepare(Dataset("shop", frame, catalog))
    assert data.n_items == model_items and data.n_users == users
    return data


def test_explain_json_uses_dataset_item_ids_and_one_based_ranks(ger_model, tmp_path):
    data = _data_for()
    # A short history so that the top items are not all excluded as already seen.
    data.sequences = type(data.sequences).from_lists([[3, 7, 1, 12, 5]] * 5)
    result = explain_run(tmp_path, "user1", k=4, check=True, loaded=(ger_model, data, None, None))
    payload = to_dict(result)
    assert "user_index" not in payload and payload["user"] == "user1"
    assert [item["rank"] for item in payload["items"]] == [1, 2, 3, 4]
    listed = [item["item_id"] for item in payload["items"]]
    checked = payload["check"]["items"]
    assert [entry["item_id"] for entry in checked] == listed and all(i.startswith("sku-") for i in listed)
    assert "item" not in checked[0]
    assert checked[0]["rank_before"] == 1  # the best item is rank 1, as in "items"
    assert [entry["rank_before"] for entry in checked] == [1, 2, 3, 4]
    assert all(entry["rank_predicted"] >= 1 for entry in checked) and payload["check"]["ok"]


def test_text_explanation_shows_each_items_own_values_beside_contributions(ger_model, tmp_path):
    data = _data_for()
    data.sequences = type(data.sequences).from_lists([[3, 7, 1, 12, 5]] * 5)
    result = explain_run(tmp_path, "user1", k=3, loaded=(ger_model, data, None, None))
    text = format_text(result)
    e = result.explanation
    k = int(np.argmax(np.abs(e.contributions[0])))
    assert f"{e.attributes[k]} {e.contributions[0, k]:+.3f} [{e.item_profiles[0, k]:+.2f}]" in text
    assert "the item's own value" in text


def test_plot_uses_one_colour_for_positive_and_one_for_negative_in_every_panel(ger_model):
    import matplotlib.colors as mcolors
    import matplotlib.pyplot as plt

    from lucidrec.explain.contributions import explain_user
    from lucidrec.explain.plot import explanation_figure

    explanation = explain_user(ger_model, [3, 7, 1, 12, 5], user=1, k=4)
    explanation.user_profile[:2] = [1.0, -1.0]  # both signs present in the bars
    fig = explanation_figure(explanation)
    try:
        bars, profiles, contributions = fig.axes[:3]

        def hue(rgba):  # "blue" or "red", whichever channel dominates
            r, _, b = mcolors.to_rgb(rgba)
            return "blue" if b > r else "red"

        bar_hue = {np.sign(p.get_width()): hue(p.get_facecolor()) for p in bars.patches if p.get_width() != 0}
        assert bar_hue == {1.0: "blue", -1.0: "red"}
        for ax in (profiles, contributions):
            image = ax.images[0]
            assert hue(image.cmap(image.norm(image.norm.vmax))) == "blue"
            assert hue(image.cmap(image.norm(image.norm.vmin))) == "red"
    finally:
        plt.close(fig)
