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

/**
 * Pixel values against the reference: prints the largest difference and the share of
 * elements that differ at all, and asserts the largest difference is within `tol`.
 */
export function assertPixels(got: Float32Array, ref: Float32Array, label: string, tol: number): void {
  assert.equal(got.length, ref.length, `${label}: length`);
  let maxDiff = 0, differing = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(got[i]! - ref[i]!);
    if (d > maxDiff) maxDiff = d;
    if (d !== 0) differing++;
  }
  console.log(`# ${label}: max |diff| ${maxDiff}, differing ${differing}/${ref.length} (${((100 * differing) / ref.length).toFixed(4)}%)`);
  assert.ok(maxDiff <= tol, `${label}: max diff ${maxDiff} > ${tol}`);
}
