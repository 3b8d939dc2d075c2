import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * Bytes pass through unchanged; their count is kept, and their SHA-256 when `hash` (for the
 * run's manifest).
 */
export class DigestTransform extends Transform {
  readonly #hash: Hash | undefined;
  #bytes = 0;
  #hex: string | undefined;

  constructor({ hash = true } = {}) {
    super();
    this.#hash = hash ? createHash('sha256') : undefined;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash?.update(chunk);
    this.#bytes += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#hex = this.#hash?.digest('hex');
    callback();
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The SHA-256 of everything that passed, once the stream ended. */
  get sha256(): string | undefined {
    return this.#hex;
  }
}
