// Tool calling: tools go to the chat template; <tool_call> blocks come back parsed, and
// the tool's result is fed back as a "tool" message. Run: node examples/tools.mjs [MODEL]
import { Qwen3VL, ensureDemoModel } from "../dist/src/index.js";

const vl = await Qwen3VL.load(process.argv[2] ?? ensureDemoModel().dir);
const tools = [{
  type: "function",
  function: { name: "get_weather", description: "Current weather in a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
}];
const messages = [{ role: "user", content: "What is the weather in Paris?" }];
const r = await vl.chat(messages, { tools, maxNewTokens: 48, greedy: true });
console.log("tool calls:", JSON.stringify(r.toolCalls));
for (const call of r.toolCalls.filter((c) => c.ok)) {
  messages.push({ role: "assistant", content: r.content, tool_calls: [{ type: "function", function: { name: call.name, arguments: call.arguments } }] });
  messages.push({ role: "tool", content: JSON.stringify({ city: call.arguments.city, temperature_c: 18 }) });
  const r2 = await vl.chat(messages, { tools, maxNewTokens: 48, greedy: true });
  console.log("answer:", r2.content);
}
console.log("done");
