// Runs an ONNX model written by `skd-cl export` in ONNX Runtime (CPU) and
// compares it with the logits skd-cl's own forward wrote (`skd-cl predict
// --logits`) for the same images.
//
// usage: node compare.js MODEL.onnx [options] IMAGE.ppm LOGITS.f32 [IMAGE.ppm LOGITS.f32 ...]
//   --classes N        classes of the model (the .f32 files hold N x H x W floats)
//   --normalise SPEC   "baked" (the model takes 0-255 RGB) or "ORDER,m0,m1,m2,s0,s1,s2": the
//                      normalisation the model's metadata records (ORDER: RGB or BGR)
//   --output KIND      logits | probabilities | labels (what the model outputs)
//   --tolerance X      largest normalised error max|onnx - skd| / max|skd| allowed (1e-4)
//   --time N           also time N runs after 3 warm-up runs and print the median
// All images must have one size: they run as one batch. Prints one line per
// image and exits 1 when any check fails.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

function fail(msg) {
  console.error(`compare.js: ${msg}`);
  process.exit(2);
}

// Binary PPM (P6, maxval 255) -> {w, h, rgb}.
function readPpm(path) {
  const buf = fs.readFileSync(path);
  const fields = [];
  let at = 0;
  while (fields.length < 4) {
    while (at < buf.length && /\s/.test(String.fromCharCode(buf[at]))) at++;
    if (buf[at] === 0x23) { // a comment runs to the end of the line
      while (at < buf.length && buf[at] !== 0x0a) at++;
      continue;
    }
    const start = at;
    while (at < buf.length && !/\s/.test(String.fromCharCode(buf[at]))) at++;
    fields.push(buf.toString('ascii', start, at));
  }
  at++; // the single whitespace after maxval
  const [magic, w, h, maxval] = [fields[0], +fields[1], +fields[2], +fields[3]];
  if (magic !== 'P6' || maxval !== 255) fail(`${path}: not a binary 8-bit PPM`);
  if (buf.length - at < w * h * 3) fail(`${path}: truncated (${buf.length - at} bytes of pixels for ${w}x${h})`);
  return { w, h, rgb: buf.subarray(at, at + w * h * 3) };
}

function readF32(path, count) {
  const buf = fs.readFileSync(path);
  if (buf.length !== count * 4) fail(`${path}: ${buf.length} bytes, expected ${count * 4}`);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = buf.readFloatLE(4 * i);
  return out;
}

function parseArgs(argv) {
  const o = { classes: 0, normalise: 'baked', output: 'logits', tolerance: 1e-4, time: 0, pairs: [] };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--classes') o.classes = +argv[++i];
    else if (a === '--normalise') o.normalise = argv[++i];
    else if (a === '--output') o.output = argv[++i];
    else if (a === '--tolerance') o.tolerance = +argv[++i];
    else if (a === '--time') o.time = +argv[++i];
    else if (a.startsWith('--')) fail(`unknown option ${a}`);
    else rest.push(a);
  }
  if (rest.length < 3 || rest.length % 2 !== 1) fail('usage: node compare.js MODEL.onnx [options] IMAGE.ppm LOGITS.f32 ...');
  o.model = rest[0];
  for (let i = 1; i < rest.length; i += 2) o.pairs.push({ image: rest[i], logits: rest[i + 1] });
  if (!(o.classes >= 1)) fail('--classes N is required');
  if (!['logits', 'probabilities', 'labels'].includes(o.output)) fail(`--output ${o.output}: unknown kind`);
  return o;
}

// The model's input for one image: 0-255 RGB, or normalised as skd-cl does
// (skd_normalize_sample: (pixel[src] - mean[c]) * (1 / std[c])).
function inputPlanes(img, normalise, dst, offset) {
  const plane = img.w * img.h;
  let order = 'RGB', mean = [0, 0, 0], inv = [1, 1, 1];
  if (normalise !== 'baked') {
    const f = normalise.split(',');
    if (f.length !== 7 || (f[0] !== 'RGB' && f[0] !== 'BGR')) fail(`--normalise ${normalise}: expected ORDER,m0,m1,m2,s0,s1,s2`);
    order = f[0];
    mean = f.slice(1, 4).map(Number).map(Math.fround);
    inv = f.slice(4, 7).map((s) => Math.fround(1 / Math.fround(+s)));
  }
  for (let c = 0; c < 3; c++) {
    const src = order === 'BGR' ? 2 - c : c;
    for (let p = 0; p < plane; p++) dst[offset + c * plane + p] = Math.fround((img.rgb[3 * p + src] - mean[c]) * inv[c]);
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const imgs = o.pairs.map((p) => readPpm(p.image));
  const { w, h } = imgs[0];
  for (const [i, img] of imgs.entries())
    if (img.w !== w || img.h !== h) fail(`${o.pairs[i].image} is ${img.w}x${img.h}, not ${w}x${h} like the first image`);
  const n = imgs.length, plane = w * h, k = o.classes;
  const input = new Float32Array(n * 3 * plane);
  imgs.forEach((img, b) => inputPlanes(img, o.normalise, input, b * 3 * plane));

  const session = await ort.InferenceSession.create(o.model, { executionProviders: ['cpu'] });
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', input, [n, 3, h, w]) };
  const result = await session.run(feeds);
  const out = result[session.outputNames[0]];
  const want = o.output === 'labels' ? [n, h, w] : [n, k, h, w];
  if (out.dims.join('x') !== want.join('x')) {
    console.log(`FAIL ${o.model}: output ${session.outputNames[0]} is ${out.dims.join('x')}, expected ${want.join('x')}`);
    process.exit(1);
  }

  let failed = false;
  for (let b = 0; b < n; b++) {
    const ref = readF32(o.pairs[b].logits, k * plane);
    // Reference of the output: the logits, their softmax, or their argmax.
    const argmax = new Int32Array(plane);
    const runnerUp = new Float32Array(plane); // margin of the winning class
    for (let p = 0; p < plane; p++) {
      let best = 0;
      for (let c = 1; c < k; c++) if (ref[c * plane + p] > ref[best * plane + p]) best = c;
      let second = -Infinity;
      for (let c = 0; c < k; c++) if (c !== best && ref[c * plane + p] > second) second = ref[c * plane + p];
      argmax[p] = best;
      runnerUp[p] = ref[best * plane + p] - second;
    }
    let expected = ref;
    if (o.output === 'probabilities') {
      expected = new Float32Array(k * plane);
      for (let p = 0; p < plane; p++) {
        let mx = -Infinity, sum = 0;
        for (let c = 0; c < k; c++) mx = Math.max(mx, ref[c * plane + p]);
        for (let c = 0; c < k; c++) sum += Math.exp(ref[c * plane + p] - mx);
        for (let c = 0; c < k; c++) expected[c * plane + p] = Math.exp(ref[c * plane + p] - mx) / sum;
      }
    }
    let mismatched = 0, minMargin = Infinity;
    let line;
    if (o.output === 'labels') {
      for (let p = 0; p < plane; p++) {
        minMargin = Math.min(minMargin, runnerUp[p]);
        if (Number(out.data[b * plane + p]) !== argmax[p]) mismatched++;
      }
      line = `argmax differs on ${mismatched} of ${plane} pixels`;
    } else {
      let maxErr = 0, maxRef = 0;
      const got = out.data.subarray(b * k * plane, (b + 1) * k * plane);
      for (let i = 0; i < k * plane; i++) {
        maxErr = Math.max(maxErr, Math.abs(got[i] - expected[i]));
        maxRef = Math.max(maxRef, Math.abs(expected[i]));
      }
      for (let p = 0; p < plane; p++) {
        minMargin = Math.min(minMargin, runnerUp[p]);
        let best = 0;
        for (let c = 1; c < k; c++) if (got[c * plane + p] > got[best * plane + p]) best = c;
        if (best !== argmax[p]) mismatched++;
      }
      const normalised = maxRef > 0 ? maxErr / maxRef : maxErr;
      if (!(normalised <= o.tolerance)) failed = true;
      line = `max |error| ${maxErr.toExponential(3)}, normalised error ${normalised.toExponential(3)} ` +
        `(tolerance ${o.tolerance}), argmax differs on ${mismatched} of ${plane} pixels`;
    }
    if (mismatched) failed = true;
    console.log(`${failed ? 'FAIL' : 'ok'} ${o.pairs[b].image} (${w}x${h}, batch ${n}): ${line}; smallest top-2 logit margin ${minMargin.toExponential(3)}`);
  }

  if (o.time > 0) {
    for (let i = 0; i < 3; i++) await session.run(feeds);
    const ms = [];
    for (let i = 0; i < o.time; i++) {
      const t0 = process.hrtime.bigint();
      await session.run(feeds);
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    ms.sort((a, b) => a - b);
    console.log(`onnxruntime-node ${ort.env.versions ? ort.env.versions.common : ''}: ${o.time} runs of batch ${n} at ${w}x${h}: ` +
      `median ${ms[Math.floor(ms.length / 2)].toFixed(2)} ms, min ${ms[0].toFixed(2)} ms`);
  }
  process.exit(failed ? 1 : 0);
}

main().catch((e) => fail(e && e.message ? e.message : String(e)));
