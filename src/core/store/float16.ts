// IEEE 754 binary16 <-> binary32 conversion. Node 20 has no Float16Array, and no npm package is
// worth a dependency for ~40 lines; numpy's astype(float16) is the reference in the tests.
// float32 -> float16 rounds to nearest, ties to even (as numpy and the hardware do), overflows to
// ±Infinity, keeps NaN a NaN, and produces subnormals for tiny values.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** One float32 (or any JS number, first rounded to float32) to its float16 bit pattern. */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;

  if (exp === 0xff) {
    // Infinity stays Infinity; NaN stays NaN (quiet bit set so the payload never becomes 0 = Infinity).
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }
  const e = exp - 127 + 15; // rebiased exponent
  if (e >= 0x1f) return sign | 0x7c00; // |x| >= 65536: overflow
  if (e <= 0) {
    // Subnormal half (or zero). x = m * 2^(e-38) with the implicit bit; half subnormal unit is 2^-24.
    if (e < -10) return sign; // below half the smallest subnormal: rounds to ±0
    const m = mant | 0x800000;
    const shift = 14 - e; // 14..24
    let half = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1) === 1)) half += 1; // may carry into the smallest normal
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half += 1; // a carry may reach 0x7c00 = Infinity, correctly
  return sign | half;
}

/** float16 bit pattern to the exact float32/float64 value. */
export function float16BitsToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function toFloat16Array(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) out[i] = float32ToFloat16Bits(src[i]);
  return out;
}

export function fromFloat16Array(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  for (let i = 0; i < src.length; i++) out[i] = float16BitsToFloat32(src[i]);
  return out;
}
