import assert from "node:assert/strict";

/** max |a - b| */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/**
 * The engine tolerance of the issue: max|ours − ref| <= rel · max(1, max|ref|).
 * Returns the measured error for reporting.
 */
export function assertClose(name: string, ours: ArrayLike<number>, ref: ArrayLike<number>, rel = 1e-4): number {
  assert.equal(ours.length, ref.length, `${name}: ${ours.length} values vs reference ${ref.length}`);
  for (let i = 0; i < ours.length; i++) {
    if (!Number.isFinite(ours[i]!)) assert.fail(`${name}: non-finite value ${ours[i]} at ${i}`);
  }
  const err = maxAbsDiff(ours, ref);
  const bound = rel * Math.max(1, maxAbs(ref));
  assert.ok(err <= bound, `${name}: max abs diff ${err.toExponential(3)} > bound ${bound.toExponential(3)}`);
  return err;
}
