/**
 * Tool calling: parse the model's `<tool_call>` blocks and build the messages the Qwen chat
 * template expects for the next turn.
 *
 * Model output format (one block per call, possibly several, possibly after free text):
 *   <tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>
 */

export const TOOL_CALL_OPEN = "<tool_call>";
export const TOOL_CALL_CLOSE = "</tool_call>";

export interface ToolCall {
  name: string;
  arguments: Record<string, unknown>;
}

/** A successfully parsed block. `raw` is the text between the tags. */
export interface ParsedToolCall extends ToolCall {
  ok: true;
  raw: string;
}

/** A block that could not be used; `raw` keeps its text so nothing is lost. */
export interface ToolCallError {
  ok: false;
  error: string;
  raw: string;
  /** The block was never closed (output ended, or another `<tool_call>` began first). */
  unclosed: boolean;
}

export type ToolCallEntry = ParsedToolCall | ToolCallError;

export interface ToolCallParseResult {
  /** Text outside the blocks (blocks removed, whitespace around them trimmed, pieces joined by "\n"). */
  content: string;
  /** Every block in order, valid or not. */
  toolCalls: ToolCallEntry[];
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function parseBody(raw: string): ParsedToolCall | ToolCallError {
  const body = raw.trim();
  const fail = (error: string): ToolCallError => ({ ok: false, error, raw, unclosed: false });
  if (body.length === 0) return fail("empty <tool_call> block");
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch (e) {
    return fail(`invalid JSON in <tool_call>: ${(e as Error).message}`);
  }
  if (!isPlainObject(v)) return fail("<tool_call> JSON is not an object");
  const name = v.name;
  if (typeof name !== "string" || name.length === 0) return fail('<tool_call> JSON has no string "name"');
  let args: unknown = v.arguments ?? v.parameters ?? {};
  if (typeof args === "string") {
    // some outputs carry the arguments as a JSON-encoded string (OpenAI style)
    try {
      args = args.trim() === "" ? {} : JSON.parse(args);
    } catch (e) {
      return fail(`"arguments" of ${name} is a string that is not JSON: ${(e as Error).message}`);
    }
  }
  if (!isPlainObject(args)) return fail(`"arguments" of ${name} is not a JSON object`);
  return { ok: true, name, arguments: args, raw };
}

/** Parse every `<tool_call>` block in a complete model output. Never throws. */
export function parseToolCalls(text: string): ToolCallParseResult {
  const toolCalls: ToolCallEntry[] = [];
  const pieces: string[] = [];
  let pos = 0;
  let afterBlock = false;
  const pushPiece = (s: string, beforeBlock: boolean): void => {
    let t = s;
    if (afterBlock) t = t.trimStart();
    if (beforeBlock) t = t.trimEnd();
    if (t.length > 0) pieces.push(t);
  };
  for (;;) {
    const open = text.indexOf(TOOL_CALL_OPEN, pos);
    if (open < 0) {
      pushPiece(text.slice(pos), false);
      break;
    }
    pushPiece(text.slice(pos, open), true);
    const bodyStart = open + TOOL_CALL_OPEN.length;
    const close = text.indexOf(TOOL_CALL_CLOSE, bodyStart);
    const nextOpen = text.indexOf(TOOL_CALL_OPEN, bodyStart);
    afterBlock = true;
    if (close < 0 || (nextOpen >= 0 && nextOpen < close)) {
      const end = nextOpen >= 0 ? nextOpen : text.length;
      const raw = text.slice(bodyStart, end);
      const inner = parseBody(raw);
      const why = nextOpen >= 0 ? "another <tool_call> began before </tool_call>" : "output ended before </tool_call>";
      const detail = inner.ok ? "its JSON is complete" : inner.error;
      toolCalls.push({ ok: false, error: `unclosed <tool_call> block (${why}; ${detail})`, raw, unclosed: true });
      if (nextOpen < 0) break;
      pos = nextOpen;
      continue;
    }
    toolCalls.push(parseBody(text.slice(bodyStart, close)));
    pos = close + TOOL_CALL_CLOSE.length;
  }
  return { content: toolCalls.length === 0 ? text : pieces.join("\n"), toolCalls };
}

/** True when the text contains at least the opening of a tool call (useful while streaming). */
export function hasToolCall(text: string): boolean {
  return text.includes(TOOL_CALL_OPEN);
}

// ---------------------------------------------------------------------------------------------
// Messages for the chat template.

export interface ChatToolCall {
  type: "function";
  id?: string;
  function: { name: string; arguments: Record<string, unknown> | string };
}

export interface AssistantToolCallMessage {
  role: "assistant";
  content: string;
  tool_calls: ChatToolCall[];
  reasoning_content?: string;
}

export interface ToolResultMessage {
  role: "tool";
  content: string;
  name?: string;
  tool_call_id?: string;
}

/**
 * The assistant message that records the calls, in the shape the Qwen chat template reads
 * (`message.tool_calls[j].function.{name, arguments}`). Accepts plain calls or a parse result
 * (its invalid entries are left out; its content is used unless `content` is given).
 */
export function assistantToolCallMessage(
  calls: readonly ToolCall[] | ToolCallParseResult,
  options: { content?: string; reasoning?: string; ids?: readonly string[] } = {},
): AssistantToolCallMessage {
  const list: ToolCall[] = Array.isArray(calls)
    ? [...(calls as readonly ToolCall[])]
    : (calls as ToolCallParseResult).toolCalls.filter((c): c is ParsedToolCall => c.ok);
  const content = options.content ?? (Array.isArray(calls) ? "" : (calls as ToolCallParseResult).content);
  const msg: AssistantToolCallMessage = {
    role: "assistant",
    content,
    tool_calls: list.map((c, j) => {
      const tc: ChatToolCall = { type: "function", function: { name: c.name, arguments: c.arguments } };
      const id = options.ids?.[j];
      if (id !== undefined) tc.id = id;
      return tc;
    }),
  };
  if (options.reasoning !== undefined) msg.reasoning_content = options.reasoning;
  return msg;
}

/**
 * A tool result message. Strings are passed through; anything else is serialised as JSON
 * (Python `json.dumps` spacing, like the rest of the template's JSON).
 */
export function toolResultMessage(result: unknown, options: { name?: string; toolCallId?: string } = {}): ToolResultMessage {
  const content = typeof result === "string" ? result : pythonJsonDumps(result);
  const msg: ToolResultMessage = { role: "tool", content };
  if (options.name !== undefined) msg.name = options.name;
  if (options.toolCallId !== undefined) msg.tool_call_id = options.toolCallId;
  return msg;
}

/**
 * JSON text as Python's `json.dumps(v, ensure_ascii=False)` writes it: `", "` and `": "`
 * separators, keys in insertion order, non-ASCII kept. (Integral floats print like integers,
 * JavaScript having no separate float type.)
 */
export function pythonJsonDumps(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number") return Number.isFinite(v) ? JSON.stringify(v) : Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "bigint") return v.toString();
  if (Array.isArray(v)) return "[" + v.map(pythonJsonDumps).join(", ") + "]";
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (typeof (o as { toJSON?: unknown }).toJSON === "function") return pythonJsonDumps((o as { toJSON: () => unknown }).toJSON());
    const parts: string[] = [];
    for (const [k, x] of Object.entries(o)) {
      if (x === undefined || typeof x === "function") continue;
      parts.push(JSON.stringify(k) + ": " + pythonJsonDumps(x));
    }
    return "{" + parts.join(", ") + "}";
  }
  return "null";
}

/** The exact text the chat template renders for one call (and what the model emits). */
export function formatToolCall(call: ToolCall | ChatToolCall): string {
  const c = "function" in call && typeof call.function === "object" ? call.function : (call as ToolCall);
  const args = typeof c.arguments === "string" ? c.arguments : pythonJsonDumps(c.arguments);
  return `${TOOL_CALL_OPEN}\n{"name": "${c.name}", "arguments": ${args}}\n${TOOL_CALL_CLOSE}`;
}
