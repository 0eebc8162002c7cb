"""Independent f64 implementation of the notebook's three gradient-descent variants (issue 6).

Writes gd_reference.json beside this file: theta, final loss, iteration count and the loss after
iterations 1-50 and every 100th of sweep, sgd and batch on the notebook's data (alpha 0.01, threshold 60). The sgd
draws use the same generator as shendu-core's `Rng` (xoshiro256++ seeded by splitmix64,
`below(n) = (next_u64 * n) >> 64`), re-implemented here from its definition.

Run: python3 gd_reference.py
"""
import json
import os

M64 = (1 << 64) - 1

class Rng:
    def __init__(self, seed):
        z = seed
        s = []
        for _ in range(4):
            z = (z + 0x9E3779B97F4A7C15) & M64
            x = z
            x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
            x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
            s.append(x ^ (x >> 31))
        self.s = s

    def next_u64(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M64
        result = (rotl((s[0] + s[3]) & M64, 23) + s[0]) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def below(self, n):
        return (self.next_u64() * n) >> 64

X = [(1, 0., 3), (1, 1., 3), (1, 2., 3), (1, 3., 2), (1, 4., 4)]
Y = [95.364, 97.217205, 75.195834, 60.105519, 49.342380]
ALPHA, THRESHOLD, MAX_ITER, SEED = 0.01, 60.0, 100000, 0

def loss(theta):
    return sum((y - sum(t * v for t, v in zip(theta, x))) ** 2 / 2 for x, y in zip(X, Y))

def run(method):
    theta = [0.0, 0.0, 0.0]
    rng = Rng(SEED)
    losses = []
    m = len(X)
    for it in range(1, MAX_ITER + 1):
        if method == "sweep":
            for x, y in zip(X, Y):
                diff = sum(t * v for t, v in zip(theta, x)) - y
                theta = [t - ALPHA * diff * v for t, v in zip(theta, x)]
        elif method == "sgd":
            i = rng.below(m)
            diff = sum(t * v for t, v in zip(theta, X[i])) - Y[i]
            theta = [t - ALPHA * diff * v for t, v in zip(theta, X[i])]
        else:
            grad = [0.0, 0.0, 0.0]
            for x, y in zip(X, Y):
                diff = sum(t * v for t, v in zip(theta, x)) - y
                grad = [g + diff * v for g, v in zip(grad, x)]
            theta = [t - ALPHA * g / m for t, g in zip(theta, grad)]
        err = loss(theta)
        losses.append(err)
        if abs(err) < THRESHOLD:
            break
    print("%s Done: theta0 : %f, theta1 : %f, theta2 : %f, error : %f  iterations: %d" % (method, *theta, err, it))
    # Every loss of the first 50 iterations and of every 100th: enough to pin the whole curve.
    kept = {str(i + 1): l for i, l in enumerate(losses) if i < 50 or (i + 1) % 100 == 0}
    return {"theta": theta, "loss": err, "iterations": it, "losses": kept}

out = {m: run(m) for m in ["sweep", "sgd", "batch"]}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "gd_reference.json"), "w") as f:
    json.dump(out, f, indent=1)
