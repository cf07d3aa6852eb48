/**
 * An error caused by the user's input (a file, a field, a request) rather than a bug.
 * Interfaces print only its message, never a stack trace.
 */
export class QwenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "QwenError";
  }
}
