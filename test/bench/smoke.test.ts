// Smoke test of `qwen3-vl bench`: the 2B shapes with one text layer and one vision block, a
// 16-token prompt, 4 decode tokens and only the 448x448 image, one format; checks the shape of
// the --json line. (Real benchmark runs are not part of npm test; see docs/PERFORMANCE.md.)
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { it } from "node:test";
import { REPO_ROOT } from "../helpers/paths.js";

const run = promisify(execFile);

it("qwen3-vl bench --json prints one result object per format as its last line", async () => {
  const { stdout } = await run(process.execPath, [
    join(REPO_ROOT, "bin", "qwen3-vl.js"), "bench", "--config", "2b", "--layers", "1", "--formats", "q8", "--threads", "1",
    "--repeat", "1", "--prompt-tokens", "16", "--decode-tokens", "4", "--no-vision-large", "--json",
  ], { maxBuffer: 1 << 24, timeout: 120_000 });
  const lines = stdout.trim().split("\n");
  const j = JSON.parse(lines[lines.length - 1]!) as Record<string, any>;
  assert.equal(j.config, "2b");
  assert.equal(j.threads, 1);
  assert.equal(j.results.length, 1);
  const r = j.results[0];
  assert.equal(r.format, "q8");
  for (const k of ["decode_tok_s", "prefill_tok_s", "ttft_ms", "peak_rss_bytes", "weight_bytes"]) {
    assert.ok(typeof r[k] === "number" && r[k] > 0 && Number.isFinite(r[k]), `${k} = ${r[k]}`);
  }
  assert.deepEqual(Object.keys(r.vision_ms).sort(), ["1024x768", "448x448"]);
  assert.equal(r.vision_ms["1024x768"], null);
  assert.ok(r.vision_ms["448x448"] > 0);
  // q8 of the 2B shapes with one layer: the 151936 x 2048 embedding alone is ~330 MB
  assert.ok(r.weight_bytes > 300e6 && r.weight_bytes < 600e6, `weight_bytes ${r.weight_bytes}`);
  // the table precedes the JSON line
  assert.match(stdout, /format\s+decode tok\/s/);
});
