"""scikit-learn's side of mnist_classical.rs: brute-force KNeighborsClassifier (1-NN, 3-NN, L2)
and KMeans(k=10, n_init=1, k-means++, lloyd) on full MNIST, pixels scaled to [0, 1] as float32.

python mnist_sklearn.py /path/to/mnist [knn|kmeans|all] [seeds]
"""
import gzip, os, sys, time
import numpy as np
from sklearn.neighbors import KNeighborsClassifier
from sklearn.cluster import KMeans, kmeans_plusplus

def idx(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)

d = sys.argv[1]
what = sys.argv[2] if len(sys.argv) > 2 else "all"
seeds = int(sys.argv[3]) if len(sys.argv) > 3 else 1
f = lambda n: os.path.join(d, n + ".gz") if os.path.exists(os.path.join(d, n + ".gz")) else os.path.join(d, n)
xtr = idx(f("train-images-idx3-ubyte")).reshape(60000, -1).astype(np.float32) / 255
ytr = idx(f("train-labels-idx1-ubyte"))
xte = idx(f("t10k-images-idx3-ubyte")).reshape(10000, -1).astype(np.float32) / 255
yte = idx(f("t10k-labels-idx1-ubyte"))
if what in ("knn", "all"):
    for k in (1, 3):
        t = time.perf_counter()
        pred = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(xtr, ytr).predict(xte)
        print(f"sklearn {k}-NN: test error {100 * (pred != yte).mean():.2f}% in {time.perf_counter() - t:.2f} s")
if what in ("kmeans", "all"):
    for seed in range(seeds):
        t = time.perf_counter()
        kmeans_plusplus(xtr, 10, random_state=seed)
        seeding = time.perf_counter() - t
        t = time.perf_counter()
        km = KMeans(n_clusters=10, n_init=1, init="k-means++", algorithm="lloyd", random_state=seed).fit(xtr)
        total = time.perf_counter() - t
        print(f"sklearn kmeans seed {seed}: inertia {km.inertia_:.1f}, {km.n_iter_} iterations, seeding {seeding:.2f} s, "
              f"{1000 * (total - seeding) / km.n_iter_:.1f} ms/iteration, total {total:.2f} s")
