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
  // host ceilings and the roofline shares derived from them
  assert.ok(r.ceilings.fma_gflops > 0 && r.ceilings.read_gb_s > 0, JSON.stringify(r.ceilings));
  // one 2B decoder layer (q 2048x2048, k/v 1024x2048, o 2048x2048, gate/up 6144x2048, down 2048x6144) and the
  // tied 151936x2048 head, q8 = 1 byte + a 4-byte scale per 32 values
  const layer = 2048 * 2048 * 2 + 1024 * 2048 * 2 + 6144 * 2048 * 3, head = 151936 * 2048;
  assert.equal(r.decode_bytes_per_token, (layer + head) * 1.125);
  assert.ok(Math.abs(r.prefill_gflops / r.prefill_tok_s - (2 * layer) / 1e9) < 1e-9, `prefill flops/token ${r.prefill_gflops / r.prefill_tok_s}`);
  assert.ok(Math.abs(r.decode_vs_read - r.decode_read_gb_s / r.ceilings.read_gb_s) < 1e-9);
  // the table precedes the JSON line
  assert.match(stdout, /format\s+decode tok\/s/);
});
