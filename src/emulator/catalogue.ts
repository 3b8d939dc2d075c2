/**
 * A deterministic album catalogue of any size: album `i` is a pure function of (seed, i), so a
 * page is generated on demand and a million albums cost no memory. Strings cycle through the
 * cases that break naive CSV writers.
 */

/** Names that exercise CSV quoting and encoding; each appears regularly in the catalogue. */
export const TRICKY_NAMES = [
  'Hello, World',
  'She said "yes"',
  'Line one\nLine two',
  'Carriage\r\nReturn',
  'Tab\tSeparated',
  'Emoji 🎧🔥',
  '東京ナイト',
  'مرحبا بالعالم',
  '  padded both  ',
  '',
  '"Quoted", with comma',
  '=SUM(A1:A2)',
  'Ünïcödé façade',
  'Plain Title',
] as const;

const WORDS = [
  'Midnight',
  'Echo',
  'Golden',
  'River',
  'Static',
  'Bloom',
  'Neon',
  'Paper',
  'Velvet',
  'Signal',
  'Harbor',
  'Ash',
];
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** splitmix32-style integer hash: cheap, well mixed, deterministic. */
export function hash(seed: number, a: number, b = 0): number {
  let h =
    (seed ^ Math.imul(a + 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x7f4a7c15, 0xc2b2ae35)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x21f0aaad);
  h = Math.imul(h ^ (h >>> 15), 0x735a2d97);
  return (h ^ (h >>> 15)) >>> 0;
}

/** A 22-character base62 id like Spotify's, unique per (kind, index). */
export function spotifyId(seed: number, kind: number, index: number): string {
  let id = '';
  for (let i = 0; i < 22; i++) id += BASE62[hash(seed, index, kind * 64 + i) % 62];
  return id;
}

export interface Artist {
  external_urls: { spotify: string };
  href: string;
  id: string;
  name: string;
  type: 'artist';
  uri: string;
}

export interface Album {
  album_type: 'album' | 'single' | 'compilation';
  artists: Artist[];
  external_urls: { spotify: string };
  href: string;
  id: string;
  images: { height: number; url: string; width: number }[];
  name: string;
  release_date: string;
  release_date_precision: 'year' | 'month' | 'day';
  total_tracks: number;
  type: 'album';
  uri: string;
}

function name(seed: number, index: number, salt: number): string {
  const h = hash(seed, index, salt);
  // Every fourth name is a tricky one; the rest are two plain words.
  if (h % 4 === 0) return TRICKY_NAMES[(h >>> 2) % TRICKY_NAMES.length] as string;
  return `${WORDS[(h >>> 3) % WORDS.length]} ${WORDS[(h >>> 9) % WORDS.length]} ${index}`;
}

function releaseDate(h: number): {
  release_date: string;
  release_date_precision: Album['release_date_precision'];
} {
  const year = 1990 + (h % 37);
  const month = String(1 + ((h >>> 6) % 12)).padStart(2, '0');
  const day = String(1 + ((h >>> 10) % 28)).padStart(2, '0');
  switch ((h >>> 16) % 8) {
    case 0:
      return { release_date: '0000', release_date_precision: 'year' };
    case 1:
      return { release_date: String(year), release_date_precision: 'year' };
    case 2:
      return { release_date: `${year}-${month}`, release_date_precision: 'month' };
    default:
      return { release_date: `${year}-${month}-${day}`, release_date_precision: 'day' };
  }
}

/** Album number `index` (0-based) of the catalogue for `seed`, keys in Spotify's (alphabetical) order. */
export function album(seed: number, index: number, apiUrl: string): Album {
  const h = hash(seed, index, 1);
  const id = spotifyId(seed, 1, index);
  // 0..4 artists: mostly one, some none (the tutorial skips those), some collaborations.
  const artistCount = [1, 1, 1, 2, 1, 3, 0, 4][h % 8] as number;
  const artists: Artist[] = [];
  for (let a = 0; a < artistCount; a++) {
    // Artists repeat across albums (a pool of about a third of the albums), like real catalogues.
    // Consecutive indexes in a pool of at least 7, so the artists of one album are distinct.
    const artistIndex = (hash(seed, index, 100) + a) % (Math.floor(index / 3) + 7);
    const artistId = spotifyId(seed, 2, artistIndex);
    artists.push({
      external_urls: { spotify: `https://open.spotify.com/artist/${artistId}` },
      href: `${apiUrl}/v1/artists/${artistId}`,
      id: artistId,
      name: name(seed, artistIndex, 7),
      type: 'artist',
      uri: `spotify:artist:${artistId}`,
    });
  }
  const albumType = (['album', 'single', 'single', 'compilation'] as const)[
    (h >>> 3) % 4
  ] as Album['album_type'];
  return {
    album_type: albumType,
    artists,
    external_urls: { spotify: `https://open.spotify.com/album/${id}` },
    href: `${apiUrl}/v1/albums/${id}`,
    id,
    images: [640, 300, 64].map((size) => ({
      height: size,
      url: `https://i.scdn.co/image/ab67616d0000b273${id.slice(0, 8).toLowerCase()}${size}`,
      width: size,
    })),
    name: name(seed, index, 3),
    ...releaseDate(hash(seed, index, 2)),
    total_tracks: albumType === 'single' ? 1 + (h % 3) : 8 + (h % 12),
    type: 'album',
    uri: `spotify:album:${id}`,
  };
}
