// The README's runnable examples run as written (on the demo model, offline).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, it } from "node:test";
import { REPO_ROOT } from "../helpers/paths.js";

const run = promisify(execFile);
const home = mkdtempSync(join(tmpdir(), "qwen3vl-examples-"));
const env = { ...process.env, QWEN3VL_HOME: home };
const example = (name: string, ...args: string[]) =>
  run(process.execPath, [join(REPO_ROOT, "examples", name), ...args], { cwd: REPO_ROOT, env, timeout: 120_000 });

describe("examples/", () => {
  it("chat.mjs answers about the sample image", async () => {
    const { stdout } = await example("chat.mjs");
    const r = JSON.parse(stdout.trim().split("\n").pop()!) as { tokens: number; finish: string };
    assert.equal(r.tokens, 32);
    assert.equal(r.finish, "length");
  });
  it("stream.mjs streams and reports how it finished", async () => {
    const { stdout } = await example("stream.mjs");
    assert.match(stdout, /\[length, 24 tokens\]\n$/);
  });
  it("tools.mjs runs the tool loop", async () => {
    const { stdout } = await example("tools.mjs");
    assert.match(stdout, /^tool calls: \[.*\]$/m);
    assert.match(stdout, /done\n$/);
  });
  it("grounding.mjs maps 0-1000 boxes to pixels and saves a PNG", async () => {
    const out = join(home, "g.png");
    const { stdout } = await example("grounding.mjs", out);
    assert.match(stdout, /"box":\[38\.4,33\.6,153\.6,138\.88\]/);
    assert.ok(existsSync(out));
  });
});
