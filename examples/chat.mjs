// A conversation with an image, one answer. Run: node examples/chat.mjs [MODEL_DIR_OR_REPO]
// Without an argument it uses the demo model (random weights: the answer is noise).
import { Qwen3VL, ensureDemoModel } from "../dist/src/index.js";

const model = process.argv[2] ?? ensureDemoModel().dir;
const vl = await Qwen3VL.load(model);
const messages = [
  { role: "user", content: [{ type: "image", image: "assets/sample.png" }, { type: "text", text: "Describe this image." }] },
];
const r = await vl.chat(messages, { maxNewTokens: 32, temperature: 0.7, topP: 0.8, topK: 20, seed: 1 });
console.log(JSON.stringify({ content: r.content, reasoning: r.reasoning, tokens: r.ids.length, finish: r.finishReason }));
