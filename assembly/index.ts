export function heap_base(): usize {
  return __heap_base;
}
export function dot_f32(a: usize, b: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    acc = f32x4.add(
      acc,
      f32x4.mul(
        v128.load(a + (<usize> i << 2)),
        v128.load(b + (<usize> i << 2)),
      ),
    );
  }
  let s = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) +
    f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
  for (; i < n; i++) {
    s += load<f32>(a + (<usize> i << 2)) * load<f32>(b + (<usize> i << 2));
  }
  return s;
}
