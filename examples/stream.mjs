// Streaming: reasoning and answer deltas as they are generated, with an abort after 5 s.
// Run: node examples/stream.mjs [MODEL]
import { Qwen3VL, ensureDemoModel } from "../dist/src/index.js";

const vl = await Qwen3VL.load(process.argv[2] ?? ensureDemoModel().dir);
const signal = AbortSignal.timeout(5000);
for await (const d of vl.chatStream([{ role: "user", content: "Tell me about vision-language models." }], { maxNewTokens: 24, greedy: true, signal })) {
  if (d.type === "reasoning") process.stdout.write(`\x1b[2m${d.text}\x1b[0m`);
  else if (d.type === "content") process.stdout.write(d.text);
  else process.stdout.write(`\n[${d.result.finishReason}, ${d.result.ids.length} tokens]\n`);
}
