"""Data order of SPEC §4/§5, written from the definitions: the epoch permutation and rank slices.

    python3 scripts/reference/loader_order.py

Prints the values pinned in tests/unit/test_loader.cpp (no third-party packages needed):
- the permutation of epoch e: Fisher-Yates from the last position down, j = below(i + 1), with
  xoshiro256** seeded through splitmix64 from seed ^ (0x9e3779b97f4a7c15 * (epoch + 1)) mod 2^64,
  and below(n) = rejection sampling of next_u64 under the largest multiple of n, then mod n;
- the micro-batch of rank r at micro-step m of step s: permutation positions
  s*G + (m*world + r)*micro + [0, micro), G = micro * accum * world.
"""

MASK = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & MASK


class Xoshiro256:
    def __init__(self, seed):
        self.s = []
        x = seed & MASK
        for _ in range(4):
            x, v = splitmix64(x)
            self.s.append(v)

    def next_u64(self):
        s = self.s
        result = (rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def below(self, n):
        limit = MASK - MASK % n
        while True:
            r = self.next_u64()
            if r < limit:
                return r % n


def epoch_permutation(n, seed, epoch):
    rng = Xoshiro256(seed ^ ((0x9E3779B97F4A7C15 * (epoch + 1)) & MASK))
    p = list(range(n))
    for i in range(n, 1, -1):
        j = rng.below(i)
        p[i - 1], p[j] = p[j], p[i - 1]
    return p


def rank_slice(perm, step, m, rank, micro, accum, world):
    g = micro * accum * world
    begin = step * g + (m * world + rank) * micro
    return perm[begin:begin + micro]


def main():
    for n, seed, epoch in [(10, 42, 0), (10, 42, 1), (10, 7, 0), (37, 42, 5)]:
        print(f"epoch_permutation({n}, {seed}, {epoch}) = {epoch_permutation(n, seed, epoch)}")
    perm = epoch_permutation(40, 42, 2)
    print("n=40 seed=42 epoch=2, micro=2 accum=2 world=2, step 3:")
    for m in range(2):
        for r in range(2):
            print(f"  micro {m} rank {r}: {rank_slice(perm, 3, m, r, 2, 2, 2)}")


if __name__ == "__main__":
    main()
