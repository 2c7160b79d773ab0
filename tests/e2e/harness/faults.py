"""Wrapper estimators that misbehave on purpose, packaged like any other model.

Fault injection lives in the model, not in the serving template: a candidate that
fails or is slow is a real package, served by the unchanged template. This module is
not installed, so packaging ships these classes inside each package by value
(`pitstop.packaging.code`): the model servers, like an image, import nothing of it.
"""

from __future__ import annotations

import itertools
import random
import time
from typing import Any

from sklearn.base import BaseEstimator, ClassifierMixin


class _Wrapper(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Delegates to a fitted classifier; `fit` only copies what packaging inspects."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, features: Any, labels: Any = None) -> _Wrapper:
        self.classes_ = self.estimator.classes_
        self.n_features_in_ = self.estimator.n_features_in_
        if hasattr(self.estimator, "feature_names_in_"):
            self.feature_names_in_ = self.estimator.feature_names_in_
        return self

    def predict(self, features: Any) -> Any:
        self._misbehave()
        return self.estimator.predict(features)

    def predict_proba(self, features: Any) -> Any:
        self._misbehave()
        return self.estimator.predict_proba(features)

    def _misbehave(self) -> None:
        raise NotImplementedError

    def _call_number(self) -> int:
        """This call's number in this process (from 1): the counter is not pickled, so a
        restarted server counts anew."""
        counter = self.__dict__.setdefault("_calls", itertools.count(1))
        return next(counter)

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = super().__getstate__()
        state.pop("_calls", None)
        return state


class Flaky(_Wrapper):
    """Raises on every `every`-th call (every=5: 20% of single-row requests fail)."""

    def __init__(self, estimator: Any, every: int = 5) -> None:
        super().__init__(estimator)
        self.every = every

    def _misbehave(self) -> None:
        if self._call_number() % self.every == 0:
            raise RuntimeError("injected fault: this call fails on purpose")


class Unreliable(_Wrapper):
    """Raises on a random `rate` of calls: an error rate with the variance of real
    traffic (a fault every n-th call has none, and hides how noisy small windows are).
    A process's first call never fails: it is packaging's own check that the model
    predicts the training rows, which a fault would turn into a failed test set-up."""

    def __init__(self, estimator: Any, rate: float = 0.01) -> None:
        super().__init__(estimator)
        self.rate = rate

    def _misbehave(self) -> None:
        if self._call_number() > 1 and random.random() < self.rate:
            raise RuntimeError("injected fault: this call fails at random")


class Paced(_Wrapper):
    """Sleeps `seconds` before each prediction: a model that costs that much per call."""

    def __init__(self, estimator: Any, seconds: float = 0.01) -> None:
        super().__init__(estimator)
        self.seconds = seconds

    def _misbehave(self) -> None:
        time.sleep(self.seconds)


class Decaying(_Wrapper):
    """Right for its first `after` calls, then answers the other class every time: a
    model whose quality falls apart once it has been serving a while (per process)."""

    def __init__(self, estimator: Any, after: int = 100) -> None:
        super().__init__(estimator)
        self.after = after

    def _misbehave(self) -> None:
        pass

    def _decayed(self) -> bool:
        return self._call_number() > self.after

    def predict(self, features: Any) -> Any:
        answers = self.estimator.predict(features)
        if not self._decayed():
            return answers
        import numpy as np

        first, second = self.classes_[0], self.classes_[1]
        return np.where(answers == first, second, first)

    def predict_proba(self, features: Any) -> Any:
        answers = self.estimator.predict_proba(features)
        return answers[:, ::-1] if self._decayed() else answers
