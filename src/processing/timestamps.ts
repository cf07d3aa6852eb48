// Video timestamps: seconds of each temporal patch (mean of its first and last frame's time
// in the original video) and their prompt text "<t seconds>" with Python's f"{t:.1f}".

/**
 * Python's f"{x:.1f}": correctly rounded from the exact binary value, ties to even
 * (0.25 -> "0.2", 1.25 -> "1.2", 0.35 -> "0.3" since 0.35 is stored just below).
 */
export function format1f(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
  // toFixed rounds the exact value correctly but breaks exact ties upward; an exact tie at
  // one decimal means 10x = k + 1/2 exactly, i.e. 4x is an odd integer.
  const q = x * 4; // exact (power of two scaling)
  if (Number.isInteger(q) && Math.abs(q) % 2 === 1 && Math.abs(x) < 2 ** 50) {
    const neg = x < 0;
    const a = Math.abs(x) * 10; // exact: odd multiple of 2.5 well inside the 53-bit range
    let n = Math.floor(a);
    if (n % 2 === 1) n += 1;
    const s = `${Math.floor(n / 10)}.${n % 10}`;
    return neg ? `-${s}` : s;
  }
  // toFixed switches to exponent notation from 1e21; such values are integers.
  if (Math.abs(x) >= 1e21) return `${BigInt(x).toString()}.0`;
  const s = x.toFixed(1);
  return s === "-0.0" && Object.is(x, -0) ? "-0.0" : s;
}

/** "<t seconds>" as inserted before each video temporal patch. */
export function timestampText(seconds: number): string {
  return `<${format1f(seconds)} seconds>`;
}

/**
 * Seconds for each temporal patch: indices padded to a multiple of `temporalPatchSize` by
 * repeating the last one, t = index / fps, then the mean of each group's first and last.
 */
export function calculateTimestamps(indices: readonly number[], videoFps: number, temporalPatchSize = 2): number[] {
  const idx = [...indices];
  if (idx.length === 0) return [];
  while (idx.length % temporalPatchSize !== 0) idx.push(idx[idx.length - 1]!);
  const ts = idx.map((i) => i / videoFps);
  const out: number[] = [];
  for (let i = 0; i < ts.length; i += temporalPatchSize) out.push((ts[i]! + ts[i + temporalPatchSize - 1]!) / 2);
  return out;
}
