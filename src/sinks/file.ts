import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { SpotifyBatchError } from '../core/errors.ts';
import type { Sink, SinkResult } from '../core/sink.ts';

/**
 * Writes to a temporary file beside the target (same directory, so the final rename is atomic
 * on POSIX file systems) and renames it over the target on commit. A failed run deletes the
 * temporary file; the target is never half-written.
 */
export class FileSink implements Sink {
  readonly writable: Writable;
  readonly #target: string;
  readonly #temp: string;

  private constructor(target: string, temp: string, writable: Writable) {
    this.#target = target;
    this.#temp = temp;
    this.writable = writable;
  }

  static async open(target: string): Promise<FileSink> {
    const dir = dirname(target);
    const info = await stat(dir).catch(() => undefined);
    if (!info?.isDirectory()) {
      throw new SpotifyBatchError('ERR_CONFIG', `option --out: directory ${dir} does not exist`, {
        context: { path: target },
      });
    }
    const targetInfo = await stat(target).catch(() => undefined);
    if (targetInfo?.isDirectory()) {
      throw new SpotifyBatchError(
        'ERR_CONFIG',
        `option --out: ${target} is a directory, expected a file path`,
        {
          context: { path: target },
        },
      );
    }
    const temp = join(dir, `.${basename(target)}.${randomBytes(6).toString('hex')}.partial`);
    const writable = createWriteStream(temp, { flags: 'wx', highWaterMark: 64 * 1024 });
    // Surface open errors (permissions) now, as a configuration error, not mid-run.
    await new Promise<void>((resolve, reject) => {
      writable.once('open', () => resolve());
      writable.once('error', (cause) =>
        reject(
          new SpotifyBatchError('ERR_SINK', `cannot write ${target}: ${(cause as Error).message}`, {
            cause,
            context: { path: target },
          }),
        ),
      );
    });
    return new FileSink(target, temp, writable);
  }

  async commit(): Promise<SinkResult> {
    await finished(this.writable);
    try {
      await rename(this.#temp, this.#target);
    } catch (cause) {
      await rm(this.#temp, { force: true });
      throw new SpotifyBatchError(
        'ERR_SINK',
        `cannot move the output into place at ${this.#target}: ${(cause as Error).message}`,
        {
          cause,
          context: { path: this.#target },
        },
      );
    }
    return { location: this.#target };
  }

  async abort(): Promise<void> {
    this.writable.destroy();
    await finished(this.writable).catch(() => {});
    await rm(this.#temp, { force: true });
  }
}
