"""Tiny datasets in each benchmark's exact published format (``clsreg realdata make-fixture``).

The content is synthetic but learnable (the target is drawn into the pixels or features);
the files, names, headers, bit depths and folder layout are those the loaders expect of the
real data, so a fixture exercises every line a real run does.
"""

from __future__ import annotations

from pathlib import Path

from clsreg.analysis.validate import check_choice

FIXTURES = ("imdb-wiki-dir", "agedb-dir", "nyud2-dir", "breakfast", "fashion-rotation")


def make_fixture(dataset: str, out_dir: str | Path, image_size: int | None = None,
                 seed: int = 0) -> Path:
    """Write the fixture of ``dataset`` into ``out_dir`` and return its data folder."""
    check_choice("dataset", dataset, FIXTURES)
    if dataset in ("imdb-wiki-dir", "agedb-dir"):
        from .agedir import make_age_fixture
        return make_age_fixture(out_dir, dataset, size=image_size or 32, seed=seed)
    if dataset == "nyud2-dir":
        from .nyud2 import make_nyud2_fixture
        height = image_size or 48
        return make_nyud2_fixture(out_dir, size=(height, height * 4 // 3), seed=seed)
    if dataset == "breakfast":
        from .breakfast import make_breakfast_fixture
        return make_breakfast_fixture(out_dir, seed=seed)
    from .fashion import make_fashion_fixture
    return make_fashion_fixture(out_dir, seed=seed)
