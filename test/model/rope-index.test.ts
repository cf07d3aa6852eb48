import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { it } from "node:test";
import { getRopeIndex, getRopeIndexBatch } from "../../src/model/text/rope-index.js";
import type { Grid } from "../../src/model/vision/merge-window.js";
import { fixture } from "../helpers/paths.js";

const TOK = { imageTokenId: 151655, videoTokenId: 151656, visionStartTokenId: 151652 };

it("left-padded batch: position ids and rope deltas exactly as the reference", () => {
  const f = JSON.parse(readFileSync(fixture("processing", "rope_index_padded_batch.json"), "utf8")) as {
    input_ids: number[][]; attention_mask: number[][]; image_grid_thw: Grid[]; position_ids: number[][][]; rope_deltas: number[][];
  };
  const r = getRopeIndexBatch(f.input_ids, f.attention_mask, TOK, 2, f.image_grid_thw);
  assert.deepEqual(r.positions, f.position_ids);
  assert.deepEqual(r.ropeDeltas, f.rope_deltas.map((d) => d[0]));
});

it("spec 7.2 worked example: 2x2 merged image, text resumes at base + max(gh, gw)", () => {
  const ids = [151644, 872, 198, 151652, 151655, 151655, 151655, 151655, 151653, ...new Array(9).fill(100)];
  const r = getRopeIndex(ids, TOK, 2, [[1, 4, 4]]);
  const L = ids.length;
  assert.deepEqual([...r.positions.subarray(4, 8)], [4, 4, 4, 4]); // T
  assert.deepEqual([...r.positions.subarray(L + 4, L + 8)], [4, 4, 5, 5]); // H
  assert.deepEqual([...r.positions.subarray(2 * L + 4, 2 * L + 8)], [4, 5, 4, 5]); // W
  assert.equal(r.positions[8], 6);
  assert.equal(r.ropeDelta, 16 - 18);
});

it("a continued chunk (multi-turn on a kept cache) resumes where the last one stopped", () => {
  const ids = [151644, 872, 198, 151652, 151655, 151655, 151655, 151655, 151653, 100, 101];
  const all = getRopeIndex([...ids, 7, 8, 9], TOK, 2, [[1, 4, 4]]);
  const first = getRopeIndex(ids, TOK, 2, [[1, 4, 4]]);
  const second = getRopeIndex([7, 8, 9], TOK, 2, [], [], ids.length + first.ropeDelta, ids.length);
  assert.deepEqual([...second.positions.subarray(0, 3)], [...all.positions.subarray(ids.length, ids.length + 3)]);
  assert.equal(second.ropeDelta, all.ropeDelta);
});

it("placeholder counts that do not fit the grids are clear errors", () => {
  assert.throws(() => getRopeIndex([151655, 151655, 151655], TOK, 2, [[1, 4, 4]]), /needs 4 placeholder tokens/);
  assert.throws(() => getRopeIndex([151655, 151655, 151655, 151655], TOK, 2, []), /more image blocks than image grids/);
  assert.throws(() => getRopeIndex([1, 2], TOK, 2, [[1, 4, 4]]), /1 image grids were given but the prompt has 0/);
});
