"""Splitting a frame as a reader's batches would: the streamed-pairing tests cut at any rows."""

import itertools


def split_at(whole, cuts):
    """whole cut before each row index in cuts (those past the end ignored), each part keeping
    the frame's attrs as iter_batches' frames do; [whole] when there is nothing to cut."""
    bounds = sorted({0, len(whole), *(c for c in cuts if c < len(whole))})
    parts = []
    for a, b in itertools.pairwise(bounds):
        part = whole.iloc[a:b]
        part.attrs.update(whole.attrs)
        parts.append(part)
    return parts or [whole]
