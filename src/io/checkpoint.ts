// A checkpoint directory as Hugging Face lays it out: config.json, generation_config.json,
// and weights in model.safetensors or shards listed by model.safetensors.index.json.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { QwenError } from "../errors.js";
import { SafetensorsFile, type SafeDType } from "./safetensors.js";

/** Named tensors from somewhere (files, or generated for tests and benchmarks). */
export interface TensorStore {
  readonly description: string;
  names(): string[];
  has(name: string): boolean;
  info(name: string): { dtype: SafeDType; shape: readonly number[] };
  /** Writes the tensor's raw bytes into dst (dst.byteLength equals the tensor's size). */
  readInto(name: string, dst: Uint8Array): void;
  /** Reads dst.byteLength bytes of the tensor starting at byteOffset within it. */
  readRange(name: string, byteOffset: number, dst: Uint8Array): void;
  close?(): void;
}

export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new QwenError(`cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new QwenError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

export class SafetensorsStore implements TensorStore {
  private readonly where = new Map<string, SafetensorsFile>();
  private readonly files: SafetensorsFile[] = [];

  constructor(readonly description: string, paths: string[], weightMap?: Record<string, string>, indexPath?: string) {
    const byPath = new Map<string, SafetensorsFile>();
    for (const p of paths) {
      const f = SafetensorsFile.open(p);
      byPath.set(resolve(p), f);
      this.files.push(f);
    }
    if (weightMap) {
      for (const [name, file] of Object.entries(weightMap)) {
        const f = byPath.get(resolve(description, file));
        if (!f) throw new QwenError(`${indexPath}: tensor ${name} maps to ${file}, which is not in the checkpoint`);
        if (!f.tensors.has(name)) throw new QwenError(`${indexPath}: tensor ${name} is listed in ${file} but that file does not contain it`);
        this.where.set(name, f);
      }
    }
    for (const f of this.files) {
      for (const name of f.tensors.keys()) {
        const prev = this.where.get(name);
        if (prev && prev !== f && !weightMap) throw new QwenError(`tensor ${name} appears in both ${prev.path} and ${f.path}`);
        if (!prev) this.where.set(name, f);
      }
    }
  }

  names(): string[] {
    return [...this.where.keys()];
  }
  has(name: string): boolean {
    return this.where.has(name);
  }
  private file(name: string): SafetensorsFile {
    const f = this.where.get(name);
    if (!f) throw new QwenError(`${this.description}: missing tensor ${name}`);
    return f;
  }
  info(name: string): { dtype: SafeDType; shape: readonly number[] } {
    return this.file(name).info(name);
  }
  readInto(name: string, dst: Uint8Array): void {
    this.file(name).readBytes(name, dst);
  }
  readRange(name: string, byteOffset: number, dst: Uint8Array): void {
    this.file(name).readRange(name, byteOffset, dst);
  }
  close(): void {
    for (const f of this.files) f.close();
  }
}

export interface Checkpoint {
  dir: string;
  config: unknown;
  generationConfig: Record<string, unknown> | null;
  store: TensorStore;
  /** Bytes of all weight files. */
  weightBytes: number;
}

export function openCheckpoint(dir: string): Checkpoint {
  const d = resolve(dir);
  if (!existsSync(d) || !statSync(d).isDirectory()) throw new QwenError(`model directory ${d} does not exist`);
  const cfgPath = join(d, "config.json");
  if (!existsSync(cfgPath)) throw new QwenError(`${d} has no config.json (is this a Hugging Face checkpoint directory?)`);
  const config = readJsonFile(cfgPath);
  const genPath = join(d, "generation_config.json");
  const generationConfig = existsSync(genPath) ? (readJsonFile(genPath) as Record<string, unknown>) : null;

  const indexPath = join(d, "model.safetensors.index.json");
  let store: SafetensorsStore;
  let files: string[];
  if (existsSync(indexPath)) {
    const idx = readJsonFile(indexPath) as { weight_map?: Record<string, string> };
    if (!idx || typeof idx.weight_map !== "object" || idx.weight_map === null) {
      throw new QwenError(`${indexPath}: field weight_map is missing (expected {tensor name: shard file})`);
    }
    const shardNames = [...new Set(Object.values(idx.weight_map))];
    for (const s of shardNames) {
      if (typeof s !== "string" || s.includes("/") || s.includes("\\")) throw new QwenError(`${indexPath}: bad shard file name ${JSON.stringify(s)}`);
      if (!existsSync(join(d, s))) throw new QwenError(`${indexPath}: shard ${s} is missing from ${d}`);
    }
    files = shardNames.map((s) => join(d, s));
    store = new SafetensorsStore(d, files, idx.weight_map, indexPath);
  } else if (existsSync(join(d, "model.safetensors"))) {
    files = [join(d, "model.safetensors")];
    store = new SafetensorsStore(d, files);
  } else {
    files = readdirSync(d).filter((f) => f.endsWith(".safetensors")).sort().map((f) => join(d, f));
    if (files.length === 0) throw new QwenError(`${d} has no model.safetensors, no model.safetensors.index.json and no *.safetensors files`);
    store = new SafetensorsStore(d, files);
  }
  const weightBytes = files.reduce((a, f) => a + statSync(f).size, 0);
  return { dir: d, config, generationConfig, store, weightBytes };
}
