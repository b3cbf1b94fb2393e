/**
 * Byte-level builders for hand-made image files in tests: big/little-endian integers, PNG chunks
 * with their CRC, ISO-BMFF boxes, and a structurally valid HEIC container.
 *
 * Hand-made files let a test know the expected pixels (or the expected refusal) without a decoder.
 */
import { crc32 as zlibCrc32 } from 'node:zlib';

/** CRC-32 (the PNG/zip polynomial) over several parts, as if they were one buffer. */
export function crc32(...parts: Uint8Array[]): number {
  return parts.reduce((c, p) => zlibCrc32(p, c), 0) >>> 0;
}

export function u32be(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

export function u16be(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

export function u16le(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}

export function u32le(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A PNG chunk with its length and CRC. */
export function pngChunk(type: string, data: Uint8Array): Buffer {
  const t = Buffer.from(type, 'latin1');
  return Buffer.concat([u32be(data.length), t, data, u32be(crc32(t, data))]);
}

/** An ISO-BMFF box (HEIF/AVIF containers). */
export function isoBox(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([u32be(8 + body.length), Buffer.from(type, 'latin1'), body]);
}

/** An ISO-BMFF full box (version + zero flags). */
export function isoFullBox(type: string, version: number, ...parts: Buffer[]): Buffer {
  return isoBox(type, Buffer.from([version, 0, 0, 0]), ...parts);
}

/**
 * A structurally valid HEIC container (ftyp heic, one `hvc1` primary item with hvcC and an ispe of
 * `w`×`h`) whose HEVC payload is a stub. sharp's libheif has no HEVC decoder, so a real iPhone
 * photo fails the same way: as IMAGE_UNSUPPORTED, after its container was parsed.
 */
export function heicContainer(w: number, h: number): Buffer {
  const payload = Buffer.from([0, 0, 0, 4, 0x26, 0x01, 0xaf, 0x00]);
  const ftyp = isoBox('ftyp', Buffer.from('heic'), u32be(0), Buffer.from('mif1heic'));
  const hdlr = isoFullBox('hdlr', 0, u32be(0), Buffer.from('pict'), Buffer.alloc(12), Buffer.from([0]));
  const pitm = isoFullBox('pitm', 0, u16be(1));
  const iinf = isoFullBox('iinf', 0, u16be(1), isoFullBox('infe', 2, u16be(1), u16be(0), Buffer.from('hvc1'), Buffer.from([0])));
  // HEVCDecoderConfigurationRecord: version 1, Main profile, level 3, 4:2:0, 8-bit, no parameter sets.
  const hvcC = isoBox('hvcC', Buffer.from([1, 1, 0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 90, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 0]));
  const iprp = isoBox(
    'iprp',
    isoBox('ipco', hvcC, isoFullBox('ispe', 0, u32be(w), u32be(h))),
    isoFullBox('ipma', 0, u32be(1), u16be(1), Buffer.from([2, 0x81, 0x02])),
  );
  const iloc = (offset: number) => isoFullBox('iloc', 0, Buffer.from([0x44, 0x00]), u16be(1), u16be(1), u16be(0), u16be(1), u32be(offset), u32be(payload.length));
  const meta = (offset: number) => isoFullBox('meta', 0, hdlr, pitm, iloc(offset), iinf, iprp);
  const offset = ftyp.length + meta(0).length + 8;
  return Buffer.concat([ftyp, meta(offset), isoBox('mdat', payload)]);
}
