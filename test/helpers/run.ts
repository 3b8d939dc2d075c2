import { Writable } from 'node:stream';
import type { Options } from '../../src/core/options.ts';
import type { Emulator } from '../../src/emulator/server.ts';
import { type RunReport, run } from '../../src/pipeline.ts';
import { emulatorEnv } from './cli.ts';

/** A Writable that keeps what it is given. */
export class Collector extends Writable {
  readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.chunks.push(chunk);
    callback();
  }
  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Runs the library pipeline against `emulator`, writing to memory. */
export async function runToBuffer(
  emulator: Emulator,
  options: Options = {},
  signal?: AbortSignal,
): Promise<{ report: RunReport; bytes: Buffer }> {
  const stdout = new Collector();
  const report = await run(options, {
    env: emulatorEnv(emulator),
    stdout,
    ...(signal ? { signal } : {}),
  });
  return { report, bytes: stdout.bytes };
}
