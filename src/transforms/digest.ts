import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** Bytes pass through unchanged; their count and SHA-256 are kept for the run's manifest. */
export class DigestTransform extends Transform {
  readonly #hash: Hash = createHash('sha256');
  #bytes = 0;
  #hex: string | undefined;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#hex = this.#hash.digest('hex');
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
