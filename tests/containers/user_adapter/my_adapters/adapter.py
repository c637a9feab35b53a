"""Two adapters a user might ship: a digits classifier of their own, and one whose training breaks."""

from __future__ import annotations

from examples.digits.adapter import DigitsAdapter


class MyDigitsAdapter(DigitsAdapter):
    """The user's classifier: the example digits MLP under the user's own name."""


class BrokenTrainingAdapter(DigitsAdapter):
    """Raises in ``train``: the step must fail, and so must the run."""

    def train(self, data_path, output_path, **kwargs):  # noqa: ANN001, ANN003, ANN201 - the guide's signature
        raise RuntimeError("user training code crashed on purpose")
