import assert from 'node:assert/strict';
import { test } from 'node:test';
import { album } from '../src/emulator/catalogue.ts';
import { parseJsonBody } from '../src/sources/parse.ts';

const page = {
  albums: {
    href: 'h',
    items: Array.from({ length: 12 }, (_, i) => album(3, i, 'http://x')),
    limit: 12,
    next: null,
    offset: 0,
    previous: null,
    total: 12,
  },
};
const bytes = Buffer.from(JSON.stringify(page));

async function* chunks(buffer: Buffer, size: number) {
  for (let i = 0; i < buffer.length; i += size) yield buffer.subarray(i, i + size);
}

test('parses a page split at every chunk size, including inside multi-byte characters', async () => {
  for (const size of [1, 2, 3, 7, 64, 1000, bytes.length]) {
    assert.deepEqual(await parseJsonBody(chunks(bytes, size)), page, `chunk size ${size}`);
  }
});

test('a body that ends early is an error, never a partial page', async () => {
  for (const cut of [0, 1, bytes.length >> 1, bytes.length - 1]) {
    await assert.rejects(parseJsonBody(chunks(bytes.subarray(0, cut), 100)), `cut at ${cut}`);
  }
});

test('a body cut inside a multi-byte character is an error', async () => {
  const text = Buffer.from('{"name":"東京"}');
  await assert.rejects(parseJsonBody(chunks(text.subarray(0, 11), 4)));
});

test('non-JSON is an error', async () => {
  await assert.rejects(parseJsonBody(chunks(Buffer.from('<html>502 Bad Gateway</html>'), 8)));
});
