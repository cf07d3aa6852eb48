// Shared constants of the main-thread <-> worker fork-join protocol (control block in a SharedArrayBuffer).

/** Kernel exports that can be dispatched to the pool; the index is the id written into the control block. */
export const KERNEL_NAMES = [
  'gemv_f32', 'gemv_bf16', 'gemv_q8', 'gemv_q4', 'gemm',
  'rmsnorm', 'layernorm', 'rope_neox', 'silu_mul', 'gelu_tanh', 'gelu_erf', 'softmax', 'add', 'attention', 'pack_a',
  'fma_peak', 'read_sum', 'quantize_act_rows', 'gemm_int',
] as const;
export type KernelName = (typeof KERNEL_NAMES)[number];

/** Int32 slots of the control block. */
export const CTL_GEN = 0; // generation counter, incremented by the main thread for every job
export const CTL_FN = 1; // kernel id, or FN_YIELD / FN_EXIT
export const CTL_ARENA = 2; // arena whose instance runs the job
export const CTL_NARGS = 3; // number of f64 arguments
export const CTL_DONE = 4; // workers that finished the current job
export const CTL_SLEEPERS = 5; // workers blocked (or about to block) in Atomics.wait
export const CTL_ERROR = 6; // non-zero when a worker caught an exception
export const CTL_INTS = 16;
/** Float64 argument slots start at this byte offset of the control block. */
export const CTL_ARGS_BYTE_OFFSET = CTL_INTS * 4;
export const CTL_MAX_ARGS = 32;
export const CTL_BYTES = CTL_ARGS_BYTE_OFFSET + CTL_MAX_ARGS * 8;

export const FN_YIELD = -2; // worker leaves its spin/wait loop and returns to its event loop
export const FN_EXIT = -1; // worker exits

export interface WorkerInit {
  type: 'init';
  tid: number;
  nth: number;
  spinMicros: number;
  ctl: SharedArrayBuffer;
  module: WebAssembly.Module;
  memories: WebAssembly.Memory[];
}
export interface WorkerArena { type: 'arena'; id: number; memory: WebAssembly.Memory }
export interface WorkerResume { type: 'resume' }
export type WorkerMessage = WorkerInit | WorkerArena | WorkerResume;
