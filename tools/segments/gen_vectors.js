// Writes tests/data/segment_vectors.json: inputs and what Twilio's own segment calculator (npm
// `sms-segments-calculator`, pinned in package.json) says about each. tests/test_segments.py checks that
// messaging.segments agrees on every vector. Deterministic (seeded PRNG): re-running gives the same file.
//
// Usage (from this folder): npm ci && node gen_vectors.js
'use strict';
const fs = require('fs');
const path = require('path');
const { SegmentedMessage } = require('sms-segments-calculator');
const SmartEncodingMap = require('sms-segments-calculator/dist/libs/SmartEncodingMap').default;
const UnicodeToGsm = require('sms-segments-calculator/dist/libs/UnicodeToGSM').default;
const calcVersion = require('sms-segments-calculator/package.json').version;
const splitterVersion = require('grapheme-splitter/package.json').version;

// mulberry32: small seeded PRNG so the vectors are reproducible.
let seed = 0x5eed2026;
function rand() {
  seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const randint = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = (arr) => arr[Math.floor(rand() * arr.length)];

const GSM_BASIC = Object.keys(UnicodeToGsm).map(Number).filter((c) => UnicodeToGsm[c].length === 1)
  .map((c) => String.fromCharCode(c));
const GSM_EXT = Object.keys(UnicodeToGsm).map(Number).filter((c) => UnicodeToGsm[c].length === 2)
  .map((c) => String.fromCharCode(c)); // ^ { } \ [ ~ ] | € and form feed
const ASCII = [];
for (let c = 0x20; c < 0x7f; c++) ASCII.push(String.fromCharCode(c));
const SMART = Object.keys(SmartEncodingMap);
const EMOJI = ['😀', '👍', '👍🏽', '❤️', '❤', '🎉', '🚀', '🇺🇸', '🇫🇷', '🏳️‍🌈', '👨‍👩‍👧‍👦', '👩‍💻', '🧑‍🔧',
  '👨🏿‍🦰', '🐻‍❄️', '🫠', '🥲', '☺️', '✌🏻', '🤷‍♀️', '👁️‍🗨️', '#️⃣', '1️⃣', '🏴󠁧󠁢󠁳󠁣󠁴󠁿', '©', '™', '\u200d',
  '\ufe0f', '🔧', '👨\u200d', '\u200d👩'];
const CJK = ['中', '文', '字', '日', '本', '語', '한', '국', '어', '각', '힣', 'ᄀ', 'ᅡ', 'ᆨ', 'あ', 'カ', '。', '、'];
const OTHER_UCS = ['á', 'ç', 'ő', 'ł', 'ž', 'Ω', 'α', 'б', 'ж', 'ع', 'ب', 'ש', 'क', 'ि', 'े', 'ं', 'ก', 'ำ', '\u0301',
  '\u0308', 'e\u0301', 'a\u030a', '\u0600', '\u0d4e', '\t', '\u0000', '\u001b', '\u007f', '`', '\u00a0', '\u2028',
  '\ud800', '\udc00', '\udbff', 'Ⅻ', '𝔘', '𝟘', '\u{1F3FB}', '\u{E0061}', '\u{10FFFF}', '\ufffd', '\u0085'];
const LINEBREAKS = ['\n', '\r', '\r\n', '\n\r', '\r\n\r\n'];

function fill(pool, n) {
  let s = '';
  for (let i = 0; i < n; i++) s += pick(pool);
  return s;
}

function randomCodePoint() {
  const r = rand();
  if (r < 0.5) return String.fromCodePoint(randint(0x20, 0x2fff));
  if (r < 0.7) return String.fromCodePoint(randint(0x3000, 0xd7ff));
  if (r < 0.75) return String.fromCharCode(randint(0xd800, 0xdfff)); // lone surrogate halves
  if (r < 0.85) return String.fromCodePoint(randint(0xe000, 0xffff));
  return String.fromCodePoint(randint(0x10000, 0x10ffff));
}

const inputs = [];
const add = (s) => inputs.push(s);

// Hand-picked cases.
['', ' ', 'a', 'Hello', '{', '€', '\f', '\r\n', '\n', '\r', '😀', '👨‍👩‍👧‍👦', '🇺🇸🇫🇷🇩🇪', '中文', 'é', 'á',
  'Hi “there” — it’s … fine', 'Price: 5€ [sale] {today} ~ ^ | \\', 'naïve café', 'STOP', 'Call me at 555-1234.\n\nThanks!',
  '\ud83d', '\ude00', 'a\ud83db', '\ud83d\ud83d\ude00', 'e\u0301\u0301\u0301', '\u0600a', '각각', '\u1100\u1161\u11a8',
  '👍🏽👍🏽', '🏳️‍🌈🏳️‍🌈', '\u00a0\u00a0', '\t\t', 'x'.repeat(1600), '€'.repeat(800), '😀'.repeat(800), 'a'.repeat(1601),
].forEach(add);

// Boundary lengths with a single filler (GSM basic, GSM extension, UCS-2 BMP, UCS-2 astral, clusters).
const GSM_LENGTHS = [];
for (const b of [0, 153, 160, 306, 459, 612, 765, 918, 1071, 1224, 1377, 1530]) {
  for (let d = -3; d <= 3; d++) if (b + d >= 0) GSM_LENGTHS.push(b + d);
}
const UCS_LENGTHS = [];
for (const b of [0, 67, 70, 134, 201, 268, 335, 402, 469, 536, 603, 670]) {
  for (let d = -3; d <= 3; d++) if (b + d >= 0) UCS_LENGTHS.push(b + d);
}
for (const n of GSM_LENGTHS) { add('a'.repeat(n)); add('{'.repeat(Math.ceil(n / 2))); add('\f'.repeat(Math.floor(n / 2))); }
for (const n of UCS_LENGTHS) {
  add('中'.repeat(n)); add('😀'.repeat(Math.ceil(n / 2))); add('a'.repeat(n) + '中'); add('中' + 'a'.repeat(n));
  add('👍🏽'.repeat(Math.ceil(n / 4))); add('🇺🇸'.repeat(Math.ceil(n / 4))); add('e\u0301'.repeat(Math.ceil(n / 2)));
}
// One special character placed at every position around each segment boundary.
for (const special of ['{', '€', '\f', '\r\n', '\n', ...GSM_EXT]) {
  for (const b of [153, 160, 306, 459]) {
    for (let d = -4; d <= 2; d++) add('a'.repeat(b + d) + special + 'a'.repeat(randint(0, 10)));
  }
}
for (const special of ['😀', '👨‍👩‍👧‍👦', '👍🏽', '🇺🇸', 'e\u0301', '{', '中', '\r\n', '🏳️‍🌈', '\ud83d', '#️⃣']) {
  for (const b of [67, 70, 134, 201]) {
    for (let d = -6; d <= 2; d++) {
      add('中'.repeat(b + d) + special + '中'.repeat(randint(0, 5)));
      add('a'.repeat(b + d) + special + 'a'.repeat(randint(0, 5)));
    }
  }
}
// A long grapheme cluster (many combining marks) that cannot fit in one segment.
for (const n of [66, 67, 68, 69, 70, 71, 140, 200]) add('e' + '\u0301'.repeat(n));
for (const n of [10, 60, 66, 67, 70]) add('a'.repeat(randint(0, 140)) + 'e' + '\u0301'.repeat(n) + 'b');

// Random strings.
const POOLS = [
  [ASCII, 1], [GSM_BASIC, 1], [GSM_BASIC.concat(GSM_EXT), 1], [ASCII.concat(LINEBREAKS), 1],
  [ASCII.concat(SMART), 0.5], [ASCII.concat(EMOJI), 0.5], [CJK, 0.3], [ASCII.concat(OTHER_UCS), 0.5],
  [GSM_BASIC.concat(GSM_EXT, EMOJI, CJK, OTHER_UCS, SMART, LINEBREAKS), 1],
];
for (let i = 0; i < 2500; i++) {
  const r = rand();
  let s;
  if (r < 0.12) {
    s = '';
    const n = randint(1, 400);
    for (let j = 0; j < n; j++) s += randomCodePoint();
  } else {
    const [pool] = pick(POOLS);
    // Mostly short-to-medium, sometimes long, biased toward segment boundaries.
    const kind = rand();
    let n;
    if (kind < 0.5) n = randint(0, 200);
    else if (kind < 0.8) n = pick([...GSM_LENGTHS, ...UCS_LENGTHS]) + randint(-2, 2);
    else n = randint(200, 700);
    s = fill(pool, Math.max(0, n));
    // GSM-only text with one non-GSM character sprinkled in, sometimes.
    if (rand() < 0.15 && s.length > 0) {
      const at = randint(0, s.length);
      s = s.slice(0, at) + pick([...SMART, ...EMOJI, ...OTHER_UCS]) + s.slice(at);
    }
  }
  add(s);
}

const seen = new Set();
const vectors = [];
for (const body of inputs) {
  if (seen.has(body)) continue;
  seen.add(body);
  const m = new SegmentedMessage(body, 'auto', false);
  const bitsPerUnit = m.encodingName === 'GSM-7' ? 7 : 16;
  const smart = new SegmentedMessage(body, 'auto', true);
  const nonGsm = [...new Set(m.getNonGsmCharacters())]; // distinct, in order of first appearance
  const smartBody = smart.graphemes.join('');
  const vector = {
    body,
    encoding: m.encodingName,
    segments: m.segmentsCount,
    characters: m.numberOfCharacters,
    scalars: m.numberOfUnicodeScalars,
    segment_units: m.segments.map((seg) => seg.messageSizeInBits() / bitsPerUnit),
    non_gsm_count: nonGsm.length,
    smart_encoding: smart.encodingName,
    smart_segments: smart.segmentsCount,
  };
  // Keep the file small: the full lists and the Smart-Encoded text only for bodies up to 250 code units
  // (there are thousands of those); longer ones still carry the counts.
  if (body.length <= 250) {
    vector.non_gsm = nonGsm;
    if (smartBody !== body) vector.smart_body = smartBody;
  }
  vectors.push(vector);
}

const out = {
  generator: 'tools/segments/gen_vectors.js',
  package: `sms-segments-calculator@${calcVersion}`,
  grapheme_splitter: `grapheme-splitter@${splitterVersion}`,
  smart_encoding_map: SmartEncodingMap,
  vectors,
};
const file = path.join(__dirname, '..', '..', 'tests', 'data', 'segment_vectors.json');
fs.mkdirSync(path.dirname(file), { recursive: true });
fs.writeFileSync(file, JSON.stringify(out, null, 0) + '\n');
console.log(`wrote ${vectors.length} vectors to ${file} (sms-segments-calculator@${calcVersion})`);
