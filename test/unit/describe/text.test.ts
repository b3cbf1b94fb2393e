/**
 * The model's free text → caption and keywords, on answers shaped like real models' (comma lists,
 * numbered and bulleted lists, hashtags, labels, sentences) and on the tiny model's noise.
 */
import { describe, expect, it } from 'vitest';
import { MAX_CAPTION_CHARS, MAX_KEYWORDS, normalizeKeyword, parseCaption, parseKeywords } from '../../../src-main/describe/text.ts';

describe('parseKeywords', () => {
  it('reads a plain comma list, lower-cased, in order', () => {
    expect(parseKeywords('Dog, Beach, Sunset, Golden Retriever, Ocean Waves, Sand')).toEqual(['dog', 'beach', 'sunset', 'golden retriever', 'ocean waves', 'sand']);
  });

  it('drops a label in front of the list and the final dot', () => {
    expect(parseKeywords('Keywords: mountain, lake, reflection, hiking, autumn.')).toEqual(['mountain', 'lake', 'reflection', 'hiking', 'autumn']);
    expect(parseKeywords('Here are 8 keywords for this photo: city, night, lights, skyline, river, bridge, long exposure, urban'))
      .toEqual(['city', 'night', 'lights', 'skyline', 'river', 'bridge', 'long exposure', 'urban']);
  });

  it('reads numbered, bulleted and one-per-line lists', () => {
    expect(parseKeywords('1. Cat\n2. Sofa\n3) Living room\n4. sleeping\n5. cozy')).toEqual(['cat', 'sofa', 'living room', 'sleeping', 'cozy']);
    expect(parseKeywords('- Bicycle\n* street\n• red door\n- Amsterdam')).toEqual(['bicycle', 'street', 'red door', 'amsterdam']);
  });

  it('reads hashtags', () => {
    expect(parseKeywords('#sunset #beach #palmtrees #summer')).toEqual(['sunset', 'beach', 'palmtrees', 'summer']);
  });

  it('trims quotes, articles and a leading "and"; keeps "black and white"', () => {
    expect(parseKeywords('"a dog", \'the park\', black and white, grass, and a frisbee.')).toEqual(['dog', 'park', 'black and white', 'grass', 'frisbee']);
  });

  it('removes repeats (case and spacing ignored) and caps the count', () => {
    expect(parseKeywords('Tree, tree, TREE,  tree , forest')).toEqual(['tree', 'forest']);
    const many = Array.from({ length: 40 }, (_, i) => `word${String.fromCharCode(97 + (i % 26))}${i}`).join(', ');
    expect(parseKeywords(many)).toHaveLength(MAX_KEYWORDS);
  });

  it('drops sentences, filler words, digits-only items and special tokens', () => {
    expect(parseKeywords('The photo shows a busy market with many people buying fruit, market, fruit, 2023, photo, image, </s>'))
      .toEqual(['market', 'fruit']);
  });

  it('keeps non-Latin keywords and CJK comma lists', () => {
    expect(parseKeywords('猫，沙发、客厅')).toEqual(['猫', '沙发', '客厅']);
    expect(parseKeywords('Café, Straße, çay')).toEqual(['café', 'straße', 'çay']);
  });

  it('finds nothing in noise and never throws', () => {
    const noise = 'Adding|barasay Ret belowHowever пло polynomialFran Century++)expresszel vel)} Лórico\\"yaume trois ducMac } libert';
    const out = parseKeywords(noise);
    for (const k of out) expect(normalizeKeyword(k)).toBe(k);
    expect(out.every((k) => k.split(' ').length <= 4)).toBe(true);
    expect(parseKeywords('')).toEqual([]);
    expect(parseKeywords(',,,;;\n\n')).toEqual([]);
    expect(parseKeywords('\u0000\u0001 ----, aaaa, !!!')).toEqual([]);
  });
});

describe('parseCaption', () => {
  it('keeps one or two sentences, drops the rest', () => {
    expect(parseCaption('A brown dog runs along a sandy beach at sunset. Waves roll in behind it. The sky is orange and pink.'))
      .toBe('A brown dog runs along a sandy beach at sunset. Waves roll in behind it.');
  });

  it('drops a label, quotes and line breaks; numbers with dots stay whole', () => {
    expect(parseCaption('Caption: "A man lifts a 3.5 kg\nweight in a gym."')).toBe('A man lifts a 3.5 kg weight in a gym.');
  });

  it('cuts a long run-on answer at a word, with an ellipsis', () => {
    const long = 'word '.repeat(200);
    const c = parseCaption(long);
    expect(c.length).toBeLessThanOrEqual(MAX_CAPTION_CHARS);
    expect(c.endsWith('word…')).toBe(true);
  });

  it('is empty when there are no words', () => {
    expect(parseCaption('  </s> ... ')).toBe('');
  });
});
