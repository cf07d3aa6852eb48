// Messages to answer for the six fixture cases: the conversation files with the media from
// media/ (the video as its frame folder) must give the reference's input ids, pixel values
// within one uint8 step, and the 12 greedy tokens, through the library and through the CLI.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, it } from "node:test";
import { SafetensorsFile } from "../../src/io/safetensors.js";
import { Qwen3VL } from "../../src/pipeline.js";
import { maxAbsDiff } from "../helpers/compare.js";
import { fixture, REPO_ROOT } from "../helpers/paths.js";

const run = promisify(execFile);
const CASES = ["dense_text_only", "dense_one_image", "dense_two_images", "dense_one_video", "moe_one_image", "dense_image_and_video"];
// One uint8 step after normalisation (x/127.5 − 1), as the inputs issue states.
const PIXEL_TOL = 1 / 127.5 + 1e-6;

const loaded = new Map<string, Promise<Qwen3VL>>();
const load = (dir: string, backend: "wasm" | "reference" = "wasm") => {
  const key = `${dir}|${backend}`;
  if (!loaded.has(key)) loaded.set(key, Qwen3VL.load(fixture(dir), { backend }));
  return loaded.get(key)!;
};

for (const name of CASES) {
  describe(`end to end: ${name}`, () => {
    const meta = JSON.parse(readFileSync(fixture("cases", `${name}.json`), "utf8")) as { model: string; generated_ids: number[]; generated_text: string };
    const messagesFile = fixture("cases", `${name}.messages.json`);
    const messages = JSON.parse(readFileSync(messagesFile, "utf8")) as unknown[];
    const st = SafetensorsFile.open(fixture("cases", `${name}.safetensors`));

    for (const backend of ["wasm", "reference"] as const) it(`library (${backend} backend): ids, pixels and 12 greedy tokens`, async () => {
      const vl = await load(meta.model, backend);
      const opts = { baseDir: fixture("cases"), maxNewTokens: 12, greedy: true };
      const input = await vl.prepare(messages, opts);
      assert.deepEqual(input.inputIds, st.readInts("input_ids"));
      if (st.tensors.has("pixel_values")) assert.ok(maxAbsDiff(input.images!.pixelValues, st.readFloat32("pixel_values")) <= PIXEL_TOL);
      else assert.equal(input.images, null);
      if (st.tensors.has("pixel_values_videos")) assert.ok(maxAbsDiff(input.videos!.pixelValues, st.readFloat32("pixel_values_videos")) <= PIXEL_TOL);
      else assert.equal(input.videos, null);
      const r = await vl.chat(messages, opts);
      assert.deepEqual(r.ids, meta.generated_ids);
      assert.equal(r.promptTokens, input.inputIds.length);
    });

    it("CLI generate --json prints the same ids, text and prompt_tokens", async () => {
      const vl = await load(meta.model);
      const { stdout } = await run(process.execPath, [
        join(REPO_ROOT, "bin", "qwen3-vl.js"), "generate", "--model", fixture(meta.model), "--messages", messagesFile,
        "--max-new-tokens", "12", "--greedy", "--json",
      ], { maxBuffer: 1 << 24 });
      const lines = stdout.trim().split("\n");
      const out = JSON.parse(lines[lines.length - 1]!) as { ids: number[]; text: string; prompt_tokens: number };
      assert.deepEqual(out.ids, meta.generated_ids);
      assert.equal(out.prompt_tokens, st.readInts("input_ids").length);
      assert.equal(out.text, vl.tokenizer.decode(meta.generated_ids, { skipSpecialTokens: true }));
    });
  });
}

describe("CLI errors are one clear line", () => {
  it("missing messages file", async () => {
    await assert.rejects(
      run(process.execPath, [join(REPO_ROOT, "bin", "qwen3-vl.js"), "generate", "--model", fixture("models", "tiny-qwen3-vl-dense"), "--messages", "/nonexistent/m.json", "--json"]),
      (e: { stderr: string; code: number }) => {
        assert.equal(e.code, 1);
        assert.match(e.stderr, /cannot read messages file \/nonexistent\/m\.json: no such file/);
        assert.doesNotMatch(e.stderr, /\n\s+at /);
        return true;
      },
    );
  });
  it("a missing image named in the messages", async () => {
    const { writeFileSync, mkdtempSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const d = mkdtempSync(join(tmpdir(), "qwen3vl-cli-"));
    writeFileSync(join(d, "m.json"), JSON.stringify([{ role: "user", content: [{ type: "image", image: "nope.png" }, { type: "text", text: "hi" }] }]));
    await assert.rejects(
      run(process.execPath, [join(REPO_ROOT, "bin", "qwen3-vl.js"), "generate", "--model", fixture("models", "tiny-qwen3-vl-dense"), "--messages", join(d, "m.json")]),
      (e: { stderr: string; code: number }) => {
        assert.equal(e.code, 1);
        assert.match(e.stderr, /nope\.png/);
        assert.doesNotMatch(e.stderr, /\n\s+at /);
        return true;
      },
    );
  });
});
