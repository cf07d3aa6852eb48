// The OpenAI-compatible server on the tiny fixture model, over loopback only.
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { Qwen3VL } from "../../src/pipeline.js";
import { createOpenAIServer } from "../../src/server/openai.js";
import { fixture } from "../helpers/paths.js";

let vl: Qwen3VL;
let base = "";
let close: () => Promise<void>;

before(async () => {
  vl = await Qwen3VL.load(fixture("models", "tiny-qwen3-vl-dense"));
  const server = createOpenAIServer(vl, { baseDir: fixture("cases"), modelName: "tiny" });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = () => new Promise((r) => server.close(() => r()));
});
after(() => close());

const imageMessages = [{ role: "user", content: [{ type: "image_url", image_url: { url: "../media/img_300x170.png" } }, { type: "text", text: "Describe this image." }] }];
const post = (body: unknown) => fetch(`${base}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });

describe("OpenAI-compatible server", () => {
  it("GET /v1/models and /health", async () => {
    const m = (await (await fetch(`${base}/v1/models`)).json()) as { data: { id: string }[] };
    assert.equal(m.data[0]!.id, "tiny");
    assert.equal((await fetch(`${base}/health`)).status, 200);
  });

  it("a greedy completion equals the library's answer (the one-image reference case)", async () => {
    const res = await post({ model: "tiny", messages: imageMessages, temperature: 0, max_tokens: 12 });
    assert.equal(res.status, 200);
    const j = (await res.json()) as { choices: { message: { content: string }; finish_reason: string }[]; usage: { prompt_tokens: number; completion_tokens: number } };
    const lib = await vl.chat(imageMessages, { greedy: true, maxNewTokens: 12, baseDir: fixture("cases") });
    assert.equal(j.choices[0]!.message.content, lib.content);
    assert.deepEqual(lib.ids, [86435, 108417, 108417, 108417, 108417, 108417, 108417, 108417, 108417, 108417, 108417, 108417]);
    assert.equal(j.usage.prompt_tokens, 91);
    assert.equal(j.usage.completion_tokens, 12);
    assert.equal(j.choices[0]!.finish_reason, "length");
  });

  it("streaming: server-sent chunks join to the same text and end with [DONE]", async () => {
    const res = await post({ messages: imageMessages, temperature: 0, max_tokens: 12, stream: true });
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const text = await res.text();
    const events = text.split("\n\n").filter(Boolean);
    assert.equal(events.at(-1), "data: [DONE]");
    let joined = "";
    let finish: string | null = null;
    for (const e of events.slice(0, -1)) {
      const j = JSON.parse(e.slice("data: ".length)) as { choices: { delta: { content?: string }; finish_reason: string | null }[] };
      joined += j.choices[0]!.delta.content ?? "";
      finish = j.choices[0]!.finish_reason ?? finish;
    }
    const lib = await vl.chat(imageMessages, { greedy: true, maxNewTokens: 12, baseDir: fixture("cases") });
    assert.equal(joined, lib.content);
    assert.equal(finish, "length");
  });

  it("bad requests get OpenAI-style errors, not crashes", async () => {
    const bad = async (body: unknown, status: number, re: RegExp) => {
      const r = await post(body);
      assert.equal(r.status, status);
      const j = (await r.json()) as { error: { message: string } };
      assert.match(j.error.message, re);
    };
    await bad("{nope", 400, /not valid JSON/);
    await bad({ messages: [] }, 400, /"messages" must be a non-empty list/);
    await bad({ messages: imageMessages, temperature: "hot" }, 400, /"temperature" must be a number/);
    await bad({ messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "missing.png" } }] }] }, 400, /missing\.png/);
    await bad({ messages: imageMessages, n: 2 }, 400, /only "n": 1/);
    const nf = await fetch(`${base}/v1/nothing`);
    assert.equal(nf.status, 404);
  });
});
