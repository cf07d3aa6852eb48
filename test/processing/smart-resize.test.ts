import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fixture } from "../helpers/paths.js";
import { roundHalfEven, smartResize, smartResizeVideo } from "../../src/processing/smart-resize.js";
import { QwenError } from "../../src/errors.js";

// Exact comparison with processing/smart_resize_table.json (image and video for T = 1,2,3,8,9,64).
type Row = Record<string, unknown> & { height: number; width: number; image: [number, number] };
const table = JSON.parse(readFileSync(fixture("processing", "smart_resize_table.json"), "utf8")) as { rows: Row[] };

test("roundHalfEven is Python's round()", () => {
  assert.deepEqual([0.5, 1.5, 2.5, 22.5, -0.5, -1.5, 2.4999999999999996, 7.0, 3.5000000000000004].map(roundHalfEven), [0, 2, 2, 22, 0, -2, 2, 7, 4]);
});

test("image and video smart_resize reproduce every row of the table", () => {
  let checked = 0;
  for (const r of table.rows) {
    assert.deepEqual(smartResize(r.height, r.width), r.image, `image ${r.height}x${r.width}`);
    checked++;
    for (const t of [1, 2, 3, 8, 9, 64]) {
      const ok = r[`video_t${t}`] as [number, number] | undefined;
      const err = r[`video_t${t}_error`] as string | undefined;
      if (ok) {
        assert.deepEqual(smartResizeVideo(t, r.height, r.width), ok, `video t=${t} ${r.height}x${r.width}`);
      } else {
        assert.ok(err, `row has a result or an error for t=${t}`);
        // Same failure, our own wording: the frame-count error names the count, the size error the size.
        const re = err.includes("temporal_factor") ? new RegExp(`${t} sampled frame.*at least 2`) : new RegExp(`${r.width}x${r.height}.*at least 32 pixels`);
        assert.throws(() => smartResizeVideo(t, r.height, r.width), (e: unknown) => e instanceof QwenError && re.test(e.message), `video t=${t} ${r.height}x${r.width}: ${err}`);
      }
      checked++;
    }
  }
  assert.equal(checked, table.rows.length * 7);
});

test("spec examples and errors", () => {
  assert.deepEqual(smartResize(720, 720), [704, 704]);
  assert.deepEqual(smartResize(4000, 6000), [3328, 4992]);
  assert.deepEqual(smartResize(100, 100, { minPixels: 4096 }), [96, 96]);
  assert.throws(() => smartResize(10, 2010), (e: unknown) => e instanceof QwenError && /aspect ratio 201\.0 is larger than the supported 200/.test(e.message));
  assert.throws(() => smartResize(0, 20), (e: unknown) => e instanceof QwenError && /positive/.test(e.message));
  assert.throws(() => smartResizeVideo(4, 40, 8100), (e: unknown) => e instanceof QwenError && /aspect ratio/.test(e.message));
});
