// Streams n bytes (multiple of 64) through v128 loads: the benchmark's memory-bandwidth probe.
export function readBandwidth(p: usize, n: i32): i32 {
  let a = i32x4.splat(0), b = a, c = a, d = a;
  for (let i = 0; i < n; i += 64) {
    const q = p + <usize>i;
    a = i32x4.add(a, v128.load(q)); b = i32x4.add(b, v128.load(q + 16));
    c = i32x4.add(c, v128.load(q + 32)); d = i32x4.add(d, v128.load(q + 48));
  }
  const s = i32x4.add(i32x4.add(a, b), i32x4.add(c, d));
  return i32x4.extract_lane(s, 0) ^ i32x4.extract_lane(s, 3);
}
