// Interop checks between @cloudflare/privacypass-ts and a running privacypassd.
//
// Driven by tests/interop/run.sh; each subcommand prints one line per check,
// "ok - <what>" or "not ok - <what>: <why>", and exits 1 if any check failed.
//
//   node privacypass-ts.mjs client URL
//       privacypass-ts's Client asks our /token-request for tokens under the key
//       our directory publishes, finalizes them and redeems them on our /rpc.
//   node privacypass-ts.mjs ts-issue OUTDIR [KEYSDIR]
//       privacypass-ts's own Issuer (fresh RSA-2048 key) issues a token to
//       privacypass-ts's Client, offline. Writes OUTDIR/ts-issuer.pem (the
//       issuer's private key, PKCS#8 as WebCrypto exports it) and
//       OUTDIR/ts-token.json (the token, its challenge and the issuer's SPKI).
//       With KEYSDIR, draws again while the key's truncated id (last byte of
//       token_key_id) equals one of the keys there, which `keys import` refuses.
//   node privacypass-ts.mjs redeem-ts URL OUTDIR
//       After run.sh has imported ts-issuer.pem and sent SIGHUP: waits for the
//       directory to list that key, then redeems the ts-issued token on /rpc.
//
// The same three for token type 0x0001 (VOPRF P-384, privacypass-ts's privateVerif):
//
//   node privacypass-ts.mjs voprf-client URL
//       privacypass-ts's VOPRF Client asks our /token-request for a type-1 token
//       under the type-1 key our directory publishes, finalizes it (verifying
//       the DLEQ proof against that key) and redeems it on our /rpc.
//   node privacypass-ts.mjs voprf-ts-issue OUTDIR [KEYSDIR]
//       privacypass-ts's own VOPRF Issuer (fresh P-384 key from its keyGen)
//       issues a type-1 token to its Client, offline. Writes
//       OUTDIR/ts-voprf-issuer.hex (the private scalar, RFC 9497 SerializeScalar
//       in hex) and OUTDIR/ts-voprf-token.json (token, challenge, public key).
//       With KEYSDIR, draws again while the key's truncated id (last byte of
//       token_key_id) equals one of the keys there, which `keys import` refuses.
//   node privacypass-ts.mjs redeem-ts-voprf URL OUTDIR
//       After run.sh has imported ts-voprf-issuer.hex and sent SIGHUP: waits for
//       the directory to list that key, then redeems the ts-issued token on /rpc.
//
// Generic batches (draft-ietf-privacypass-batched-tokens -07), privacypass-ts's
// genericBatched (token types 1 and 2; 0.9.0 has no amortized batch API):
//
//   node privacypass-ts.mjs generic-batch URL
//       privacypass-ts builds a GenericBatchTokenRequest of two requests for
//       each type-1 and type-2 key our directory lists, interleaved; our
//       /token-request answers 200 with a GenericBatchTokenResponse (its bytes
//       also read independently), privacypass-ts decodes it and its per-type
//       Clients finalize every token, our /rpc redeems each once (the second
//       time -32021). Then a batch where two entries name an unknown key: 206,
//       those entries absent, privacypass-ts decodes them as null and the rest
//       finalize and redeem; and a batch of unknown keys only: 400.
//
// All traffic goes to URL, which run.sh points at 127.0.0.1.

import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
    AuthorizationHeader,
    MediaType,
    WWWAuthenticateHeader,
    genericBatched,
    privateVerif,
    publicVerif,
    sendTokenRequest,
} from '@cloudflare/privacypass-ts';

const { BlindRSAMode, Client, Issuer, Origin, TokenResponse, getPublicKeyBytes, convertRSASSAPSSToEnc } =
    publicVerif;
const BLIND_RSA = publicVerif.BLIND_RSA;

const DIRECTORY_PATH = '/.well-known/private-token-issuer-directory';
const TOKEN_TYPE = 0x0002;
const VOPRF_TOKEN_TYPE = 0x0001;
const VOPRF = privateVerif.VOPRF;
const ISSUER_NAME = '127.0.0.1';
const FETCH_TIMEOUT_MS = 15_000;
const ERR_DOUBLE_SPEND = -32021;
const ERR_INVALID_TOKEN = -32020;

let passed = 0;
let failed = 0;

function ok(what) {
    passed++;
    console.log(`ok - ${what}`);
}

function notOk(what, why) {
    failed++;
    console.log(`not ok - ${what}: ${why}`);
}

// Runs one check; a thrown error or a false result fails it. Returns the
// check's value (or undefined when it failed).
async function check(what, fn) {
    try {
        const v = await fn();
        if (v === false) {
            notOk(what, 'returned false');
            return undefined;
        }
        ok(what);
        return v;
    } catch (e) {
        notOk(what, e instanceof Error ? e.message : String(e));
        return undefined;
    }
}

const b64u = (bytes) => Buffer.from(bytes).toString('base64url');
const fromB64u = (s) => new Uint8Array(Buffer.from(s, 'base64url'));
const hex = (bytes) => Buffer.from(bytes).toString('hex');

function sameBytes(a, b) {
    return a.length === b.length && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

// The base64url values privacypass-ts puts on the wire, taken from its own
// WWW-Authenticate / Authorization header encoders (rfc4648 base64url, padded).
function attr(header, name) {
    const m = header.match(new RegExp(`${name}="?([^",]+)"?`));
    if (!m) throw new Error(`no ${name}= in ${header}`);
    return m[1];
}
function tsChallengeText(challenge, tokenKey) {
    return attr(new WWWAuthenticateHeader(challenge, tokenKey).toString(), 'challenge');
}
function tsTokenText(token) {
    return attr(new AuthorizationHeader(token).toString(), 'token');
}

async function getDirectory(url) {
    const res = await fetch(new URL(DIRECTORY_PATH, url), { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (res.status !== 200) throw new Error(`directory: HTTP ${res.status}`);
    return { contentType: res.headers.get('content-type'), body: await res.json() };
}

// Token keys of one type (default 2) from the directory, their token-key decoded
// (the SPKI for type 2, the compressed SEC1 point for type 1).
function directoryKeys(dir, tokenType = TOKEN_TYPE) {
    const keys = dir['token-keys'];
    if (!Array.isArray(keys)) throw new Error('directory has no token-keys array');
    return keys.filter((k) => k['token-type'] === tokenType).map((k) => ({ ...k, spki: fromB64u(k['token-key']) }));
}

// Waits (up to 15 s: the daemon reloads its keys dir on SIGHUP) for the
// directory to list a key of `tokenType` whose token-key is `keyBytes`.
async function waitForDirectoryKey(url, tokenType, keyBytes, keyText) {
    const deadline = Date.now() + 15_000;
    let last;
    for (;;) {
        last = directoryKeys((await getDirectory(url)).body, tokenType);
        if (last.some((k) => sameBytes(k.spki, keyBytes))) return true;
        if (Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(
        `after 15 s the directory lists ${last.length} type-${tokenType} key(s), none equal to ${keyText}: ` +
            last.map((k) => k['token-key']).join(', '),
    );
}

// What an origin does with the key: privacypass-ts converts the RSASSA-PSS SPKI
// to rsaEncryption for WebCrypto (same as its Client does internally).
function importVerifyKey(spki) {
    return crypto.subtle.importKey('spki', convertRSASSAPSSToEnc(spki), BLIND_RSA.rsaParams, true, ['verify']);
}

// JSON-RPC redeem on the daemon; returns { status, body }.
let rpcId = 0;
async function redeem(url, tokenText, challengeText) {
    const params = { token: tokenText };
    if (challengeText !== undefined) params.challenge = challengeText;
    const res = await fetch(new URL('/rpc', url), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: ++rpcId, method: 'redeem', params }),
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    const text = await res.text();
    let body;
    try {
        body = JSON.parse(text);
    } catch {
        body = text;
    }
    return { status: res.status, body };
}

function expectSuccess({ status, body }) {
    if (status !== 200 || body?.result !== 'success') {
        throw new Error(`expected 200 {"result":"success"}, got HTTP ${status} ${JSON.stringify(body)}`);
    }
}

function expectDoubleSpend({ status, body }) {
    if (status !== 403 || body?.error?.code !== ERR_DOUBLE_SPEND) {
        throw new Error(`expected HTTP 403 error ${ERR_DOUBLE_SPEND}, got HTTP ${status} ${JSON.stringify(body)}`);
    }
}

function expectErrorCode(code, { status, body }) {
    if (status === 200 || body?.error?.code !== code) {
        throw new Error(`expected a JSON-RPC error ${code}, got HTTP ${status} ${JSON.stringify(body)}`);
    }
}

function randomContext() {
    return crypto.getRandomValues(new Uint8Array(32));
}

// privacypass-ts Client + our /token-request: one token for `challenge`.
async function issueFromDaemon(issuerUrl, spki, challenge) {
    const client = new Client(BlindRSAMode.PSS);
    const tokReq = await client.createTokenRequest(challenge, spki);
    // sendTokenRequest is privacypass-ts's own issuance call: it sets
    // Content-Type/Accept and rejects any status but 200 and any response
    // Content-Type but application/private-token-response.
    const resBytes = await sendTokenRequest(tokReq.serialize(), issuerUrl.toString());
    if (resBytes.length !== BLIND_RSA.Nk) throw new Error(`TokenResponse is ${resBytes.length} bytes, want ${BLIND_RSA.Nk}`);
    // finalize runs blindrsa-ts's Finalize, which verifies the unblinded
    // signature against the key and throws "invalid signature" otherwise.
    return client.finalize(client.deserializeTokenResponse(resBytes));
}

async function cmdClient(url) {
    const dir = await check('directory is served', () => getDirectory(url));
    if (!dir) return;
    console.log(`# directory Content-Type: ${dir.contentType}`);
    const keys = await check('directory lists exactly one token-type 2 key', () => {
        const ks = directoryKeys(dir.body);
        if (ks.length !== 1) throw new Error(`got ${ks.length}: ${JSON.stringify(dir.body)}`);
        return ks;
    });
    if (!keys) return;
    const spki = keys[0].spki;
    const pk = await check('privacypass-ts imports the directory key (RSASSA-PSS SPKI, RSA-2048)', async () => {
        const k = await importVerifyKey(spki);
        if (k.algorithm.modulusLength !== 2048) throw new Error(`modulus ${k.algorithm.modulusLength} bits`);
        // privacypass-ts's own RSASSA-PSS re-encoding of the key is byte-identical,
        // so both sides derive the same token_key_id.
        const again = await getPublicKeyBytes(k);
        if (!sameBytes(again, spki)) throw new Error(`SPKI re-encodes differently: ${hex(again)} vs ${hex(spki)}`);
        return k;
    });
    if (!pk) return;
    const issuerUrl = new URL(dir.body['issuer-request-uri'] ?? '/token-request', url);
    const origin = new Origin(BlindRSAMode.PSS);

    // 1. A challenge with a 32-byte redemption context; values base64url without padding.
    const challenge = origin.createTokenChallenge(ISSUER_NAME, randomContext());
    const token = await check(`/token-request answers a privacypass-ts TokenRequest and the client finalizes it`, () =>
        issueFromDaemon(issuerUrl, spki, challenge),
    );
    if (token) {
        await check('privacypass-ts Origin verifies the token against the directory key', () =>
            origin.verify(token, pk),
        );
        await check('token key id in the token is SHA-256 of the directory token-key', async () =>
            sameBytes(token.authInput.tokenKeyId, await sha256(spki)),
        );
        const tokenText = b64u(token.serialize());
        const challengeText = b64u(challenge.serialize());
        await check('the daemon redeems the privacypass-ts token', async () =>
            expectSuccess(await redeem(url, tokenText, challengeText)),
        );
        await check('the daemon refuses the same token again (403, -32021)', async () =>
            expectDoubleSpend(await redeem(url, tokenText, challengeText)),
        );
    }

    // 2. The challenge is bound into the token (challenge_digest = SHA-256 of the
    //    TokenChallenge): presented with another challenge, it must be refused.
    const challenge3 = origin.createTokenChallenge(ISSUER_NAME, randomContext());
    const token3 = await check('/token-request issues a token for a challenge-binding check', () =>
        issueFromDaemon(issuerUrl, spki, challenge3),
    );
    if (token3) {
        const other = origin.createTokenChallenge(ISSUER_NAME, randomContext());
        await check('the daemon refuses a privacypass-ts token presented with a different challenge', async () => {
            const r = await redeem(url, b64u(token3.serialize()), b64u(other.serialize()));
            console.log(`# wrong challenge -> HTTP ${r.status} ${JSON.stringify(r.body)}`);
            if (r.status === 200 || r.body?.result !== undefined || typeof r.body?.error?.code !== 'number') {
                throw new Error(`expected a JSON-RPC error, got HTTP ${r.status} ${JSON.stringify(r.body)}`);
            }
        });
    }

    // 3. A challenge with an empty redemption context, token and challenge sent in
    //    the exact base64url text privacypass-ts's header encoders produce (padded).
    const challenge2 = origin.createTokenChallenge(ISSUER_NAME, new Uint8Array(0));
    const token2 = await check('/token-request issues a second token (empty redemption context)', () =>
        issueFromDaemon(issuerUrl, spki, challenge2),
    );
    if (token2) {
        const challengeText = tsChallengeText(challenge2, spki);
        const tokenText = tsTokenText(token2);
        console.log(`# privacypass-ts header encodings: challenge=${challengeText} token=${tokenText.slice(0, 16)}...`);
        await check('the daemon redeems it with privacypass-ts header encodings of token and challenge', async () =>
            expectSuccess(await redeem(url, tokenText, challengeText)),
        );
    }
}

async function cmdTsIssue(outDir, keysDir) {
    const taken = keysDir ? await truncatedIdsIn(keysDir) : new Set();
    const generated = await check('privacypass-ts Issuer generates an RSA-2048 key', async () => {
        for (let i = 0; i < 20; i++) {
            const kp = await Issuer.generateKey(BlindRSAMode.PSS, {
                modulusLength: 2048,
                publicExponent: Uint8Array.from([1, 0, 1]),
            });
            const spki = await getPublicKeyBytes(kp.publicKey);
            const id = await sha256(spki);
            if (!taken.has(id[id.length - 1])) return { keyPair: kp, spki };
        }
        throw new Error(`20 keys all collide with the truncated ids ${[...taken].join(',')}`);
    });
    if (!generated) return;
    const { keyPair, spki } = generated;
    await check('issuer private key exported as PKCS#8 PEM', async () => {
        const der = Buffer.from(await crypto.subtle.exportKey('pkcs8', keyPair.privateKey));
        const body = der.toString('base64').match(/.{1,64}/g).join('\n');
        await writeFile(join(outDir, 'ts-issuer.pem'), `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`, {
            mode: 0o600,
        });
    });
    const issuer = new Issuer(BlindRSAMode.PSS, ISSUER_NAME, keyPair.privateKey, keyPair.publicKey);
    const origin = new Origin(BlindRSAMode.PSS);
    const challenge = origin.createTokenChallenge(ISSUER_NAME, randomContext());
    const token = await check('privacypass-ts Issuer issues a token to privacypass-ts Client', async () => {
        const client = new Client(BlindRSAMode.PSS);
        const tokReq = await client.createTokenRequest(challenge, spki);
        // Round-trip through bytes as if over the wire.
        const tokRes = await issuer.issue(publicVerif.TokenRequest.deserialize(BLIND_RSA, tokReq.serialize()));
        return client.finalize(TokenResponse.deserialize(tokRes.serialize()));
    });
    if (!token) return;
    await check('privacypass-ts Origin verifies the ts-issued token', () => origin.verify(token, keyPair.publicKey));
    await writeFile(
        join(outDir, 'ts-token.json'),
        JSON.stringify(
            { token: b64u(token.serialize()), challenge: b64u(challenge.serialize()), 'token-key': b64u(spki) },
            null,
            2,
        ) + '\n',
    );
}

async function cmdRedeemTs(url, outDir) {
    const saved = JSON.parse(await readFile(join(outDir, 'ts-token.json'), 'utf8'));
    const spki = fromB64u(saved['token-key']);
    const listed = await check("after keys import + SIGHUP the directory lists the ts issuer's key", () =>
        waitForDirectoryKey(url, TOKEN_TYPE, spki, saved['token-key']),
    );
    if (!listed) return;
    await check('the daemon redeems the token issued by privacypass-ts Issuer', async () =>
        expectSuccess(await redeem(url, saved.token, saved.challenge)),
    );
    await check('the daemon refuses the ts-issued token again (403, -32021)', async () =>
        expectDoubleSpend(await redeem(url, saved.token, saved.challenge)),
    );
}

// --- token type 0x0001 (VOPRF P-384) ----------------------------------------------

// A type-1 token-key: the compressed SEC1 encoding of a P-384 point, 49 bytes.
function checkVoprfKey(key) {
    if (key.length !== VOPRF.Ne || (key[0] !== 0x02 && key[0] !== 0x03)) {
        throw new Error(`token-key is ${key.length} bytes starting 0x${hex(key.slice(0, 1))}, want ${VOPRF.Ne} (compressed SEC1)`);
    }
    // privacypass-ts's group decodes it as a point (throws if it is not one).
    VOPRF.group.desElt(key);
    return true;
}

// privacypass-ts VOPRF Client + our /token-request: one type-1 token for `challenge`.
async function issueVoprfFromDaemon(issuerUrl, publicKey, challenge) {
    const client = new privateVerif.Client();
    const tokReq = await client.createTokenRequest(challenge, publicKey);
    const reqBytes = tokReq.serialize();
    if (reqBytes.length !== 3 + VOPRF.Ne || reqBytes[0] !== 0x00 || reqBytes[1] !== 0x01) {
        throw new Error(`privacypass-ts TokenRequest is ${hex(reqBytes)}: not type 0x0001 of ${3 + VOPRF.Ne} bytes`);
    }
    // Content-Type application/private-token-request; 200 and
    // application/private-token-response required (see issueFromDaemon).
    const resBytes = await sendTokenRequest(reqBytes, issuerUrl.toString());
    const want = VOPRF.Ne + 2 * VOPRF.Ns;
    if (resBytes.length !== want) throw new Error(`TokenResponse is ${resBytes.length} bytes, want ${want}`);
    // finalize runs voprf-ts's VOPRFClient.finalize: it verifies the DLEQ proof
    // against the issuer's public key and throws "proof failed" otherwise.
    return client.finalize(client.deserializeTokenResponse(resBytes));
}

async function cmdVoprfClient(url) {
    const dir = await check('directory is served', () => getDirectory(url));
    if (!dir) return;
    const keys = await check('directory lists exactly one token-type 1 key', () => {
        const ks = directoryKeys(dir.body, VOPRF_TOKEN_TYPE);
        if (ks.length !== 1) throw new Error(`got ${ks.length}: ${JSON.stringify(dir.body)}`);
        return ks;
    });
    if (!keys) return;
    const publicKey = keys[0].spki;
    const okKey = await check('the type-1 token-key is a compressed P-384 point (49 bytes) privacypass-ts decodes', () =>
        checkVoprfKey(publicKey),
    );
    if (!okKey) return;
    const issuerUrl = new URL(dir.body['issuer-request-uri'] ?? '/token-request', url);
    const origin = new privateVerif.Origin();

    const challenge = origin.createTokenChallenge(ISSUER_NAME, randomContext());
    const token = await check(
        '/token-request answers a privacypass-ts type-1 TokenRequest and the client finalizes it (DLEQ proof verified)',
        () => issueVoprfFromDaemon(issuerUrl, publicKey, challenge),
    );
    if (token) {
        await check('type-1 token: token key id is SHA-256 of the directory token-key', async () =>
            sameBytes(token.authInput.tokenKeyId, await sha256(publicKey)),
        );
        await check('type-1 token: token_type 0x0001, authenticator of Nk = 48 bytes', () => {
            const bytes = token.serialize();
            if (bytes[0] !== 0x00 || bytes[1] !== 0x01) throw new Error(`token starts ${hex(bytes.slice(0, 2))}`);
            if (token.authenticator.length !== VOPRF.Nk) throw new Error(`authenticator is ${token.authenticator.length} bytes`);
        });
        const tokenText = b64u(token.serialize());
        // A copy with the last authenticator byte flipped: not a PRF output of the key.
        const forged = token.serialize();
        forged[forged.length - 1] ^= 0x01;
        await check(`the daemon refuses the type-1 token with a flipped authenticator byte (${ERR_INVALID_TOKEN})`, async () =>
            expectErrorCode(ERR_INVALID_TOKEN, await redeem(url, b64u(forged))),
        );
        await check('the daemon redeems the privacypass-ts type-1 token ({"token"} only)', async () =>
            expectSuccess(await redeem(url, tokenText)),
        );
        await check('the daemon refuses the same type-1 token again (403, -32021)', async () =>
            expectDoubleSpend(await redeem(url, tokenText)),
        );
    }
}

// Truncated token key ids (last byte of token_key_id, the file names of the
// keys dir) of the keys in `keysDir`.
async function truncatedIdsIn(keysDir) {
    const ids = new Set();
    for (const name of await readdir(keysDir)) {
        const m = name.match(/^([0-9a-f]{64})\.json$/);
        if (m) ids.add(parseInt(m[1].slice(62), 16));
    }
    return ids;
}

async function cmdVoprfTsIssue(outDir, keysDir) {
    const taken = keysDir ? await truncatedIdsIn(keysDir) : new Set();
    const keyPair = await check('privacypass-ts keyGen makes a P-384 VOPRF key pair', async () => {
        for (let i = 0; i < 100; i++) {
            const kp = await privateVerif.keyGen();
            const id = await sha256(kp.publicKey);
            if (!taken.has(id[id.length - 1])) return kp;
        }
        throw new Error(`100 keys all collide with the truncated ids ${[...taken].join(',')}`);
    });
    if (!keyPair) return;
    const { privateKey, publicKey } = keyPair;
    await check('privacypass-ts key: 48-byte scalar, 49-byte compressed public key', () =>
        privateKey.length === VOPRF.Ns && checkVoprfKey(publicKey),
    );
    await check('issuer private scalar written as hex', () =>
        writeFile(join(outDir, 'ts-voprf-issuer.hex'), hex(privateKey) + '\n', { mode: 0o600 }),
    );
    const issuer = new privateVerif.Issuer(ISSUER_NAME, privateKey, publicKey);
    const origin = new privateVerif.Origin();
    const challenge = origin.createTokenChallenge(ISSUER_NAME, randomContext());
    const token = await check('privacypass-ts VOPRF Issuer issues a type-1 token to privacypass-ts Client', async () => {
        const client = new privateVerif.Client();
        const tokReq = await client.createTokenRequest(challenge, publicKey);
        // Round-trip through bytes as if over the wire.
        const tokRes = await issuer.issue(privateVerif.TokenRequest.deserialize(tokReq.serialize()));
        return client.finalize(privateVerif.TokenResponse.deserialize(tokRes.serialize()));
    });
    if (!token) return;
    await check('privacypass-ts VOPRF Issuer verifies the ts-issued type-1 token', () => issuer.verify(token));
    await writeFile(
        join(outDir, 'ts-voprf-token.json'),
        JSON.stringify(
            { token: b64u(token.serialize()), challenge: b64u(challenge.serialize()), 'token-key': b64u(publicKey) },
            null,
            2,
        ) + '\n',
    );
}

async function cmdRedeemTsVoprf(url, outDir) {
    const saved = JSON.parse(await readFile(join(outDir, 'ts-voprf-token.json'), 'utf8'));
    const publicKey = fromB64u(saved['token-key']);
    const listed = await check("after keys import + SIGHUP the directory lists the ts VOPRF issuer's key as type 1", () =>
        waitForDirectoryKey(url, VOPRF_TOKEN_TYPE, publicKey, saved['token-key']),
    );
    if (!listed) return;
    await check('the daemon redeems the type-1 token issued by privacypass-ts VOPRF Issuer', async () =>
        expectSuccess(await redeem(url, saved.token)),
    );
    await check('the daemon refuses the ts-issued type-1 token again (403, -32021)', async () =>
        expectDoubleSpend(await redeem(url, saved.token)),
    );
}

// --- generic batches (draft-ietf-privacypass-batched-tokens -07) -------------------

const GENERIC_REQUEST_TYPE = MediaType.GENERIC_BATCHED_TOKEN_REQUEST;
const GENERIC_RESPONSE_TYPE = MediaType.GENERIC_BATCHED_TOKEN_RESPONSE;
// Serialized TokenRequest / TokenResponse sizes of the two types privacypass-ts batches.
const REQUEST_LEN = { [TOKEN_TYPE]: 3 + BLIND_RSA.Nk, [VOPRF_TOKEN_TYPE]: 3 + VOPRF.Ne };
const RESPONSE_LEN = { [TOKEN_TYPE]: BLIND_RSA.Nk, [VOPRF_TOKEN_TYPE]: VOPRF.Ne + 2 * VOPRF.Ns };

// An RFC 9000 §16 varint at bytes[off], in its shortest form (the draft's <V>).
function readVarint(bytes, off) {
    if (off >= bytes.length) throw new Error('varint: no bytes');
    const size = 1 << (bytes[off] >> 6);
    if (off + size > bytes.length) throw new Error('varint: truncated');
    let v = bytes[off] & 0x3f;
    for (let i = 1; i < size; i++) v = v * 256 + bytes[off + i];
    const shortest = v < 64 ? 1 : v < 16384 ? 2 : v < 2 ** 30 ? 4 : 8;
    if (size !== shortest) throw new Error(`varint ${v} in ${size} bytes, not its shortest form (${shortest})`);
    return { value: v, size };
}

// Reads privacypass-ts's GenericBatchTokenRequest with our reading of the draft:
// <V> byte length || TokenRequests, each beginning with its token_type once (no
// GenericTokenRequest token_type in front of it). Returns a per-entry summary.
function parseGenericRequestBytes(bytes) {
    const { value: len, size } = readVarint(bytes, 0);
    if (size + len !== bytes.length) throw new Error(`<V> length ${len} + ${size} != ${bytes.length} bytes`);
    const entries = [];
    let off = size;
    while (off < bytes.length) {
        const type = (bytes[off] << 8) | bytes[off + 1];
        const want = REQUEST_LEN[type];
        if (want === undefined) throw new Error(`entry ${entries.length} at ${off}: token_type 0x${type.toString(16).padStart(4, '0')}`);
        if (off + want > bytes.length) throw new Error(`entry ${entries.length}: ${bytes.length - off} bytes left, want ${want}`);
        entries.push({ type, truncatedId: bytes[off + 2], len: want });
        off += want;
    }
    return { prefix: hex(bytes.subarray(0, size)), entries };
}

// Reads our GenericBatchTokenResponse independently of privacypass-ts: <V> byte
// length || entries `present u8 || [token_type u16 || TokenResponse]`.
function parseGenericResponseBytes(bytes) {
    const { value: len, size } = readVarint(bytes, 0);
    if (size + len !== bytes.length) throw new Error(`<V> length ${len} + ${size} != ${bytes.length} bytes`);
    const entries = [];
    let off = size;
    while (off < bytes.length) {
        const present = bytes[off];
        if (present === 0) {
            entries.push(null);
            off += 1;
            continue;
        }
        if (present !== 1) throw new Error(`entry ${entries.length}: presence octet ${present}`);
        const type = (bytes[off + 1] << 8) | bytes[off + 2];
        const want = RESPONSE_LEN[type];
        if (want === undefined) throw new Error(`entry ${entries.length}: token_type 0x${type.toString(16)}`);
        if (off + 3 + want > bytes.length) throw new Error(`entry ${entries.length}: truncated`);
        entries.push({ type, len: want });
        off += 3 + want;
    }
    return { prefix: hex(bytes.subarray(0, size)), entries };
}

function describeEntries(entries) {
    return entries.map((e) => (e === null ? 'absent' : `0x${e.type.toString(16).padStart(4, '0')}`)).join(',');
}

// POSTs a GenericBatchTokenRequest; returns { status, contentType, bytes }.
async function postGenericBatch(issuerUrl, bytes) {
    const res = await fetch(issuerUrl, {
        method: 'POST',
        headers: { 'Content-Type': GENERIC_REQUEST_TYPE, Accept: GENERIC_RESPONSE_TYPE },
        body: bytes,
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    return { status: res.status, contentType: res.headers.get('content-type'), bytes: new Uint8Array(await res.arrayBuffer()) };
}

// One pending request of a batch: privacypass-ts's per-type Client (it keeps the
// finalization state of exactly one request), its TokenRequest and challenge.
async function pendingRequest(key, challenge) {
    const client = key.type === TOKEN_TYPE ? new Client(BlindRSAMode.PSS) : new privateVerif.Client();
    const tokReq = await client.createTokenRequest(challenge, key.bytes);
    return { key, client, challenge, request: new genericBatched.TokenRequest(tokReq) };
}

// A TokenRequest of `type` naming the truncated key id `truncatedId`, which no key of
// the issuer has: a real request's bytes with that byte replaced, read back by
// privacypass-ts's generic TokenRequest decoder.
async function unknownKeyRequest(key, challenge, truncatedId) {
    const { request } = await pendingRequest(key, challenge);
    const bytes = request.serialize();
    bytes[2] = truncatedId;
    return genericBatched.TokenRequest.deserialize(bytes);
}

// Finalizes entry i of a privacypass-ts GenericBatchTokenResponse with its pending
// request: a type-2 Client verifies the RSA signature, a type-1 Client the DLEQ proof.
function finalizeEntry(pending, entry) {
    if (entry.tokenResponse === null) throw new Error('entry is absent');
    if (entry.tokenResponse.tokenType !== pending.key.type) {
        throw new Error(`entry has token type ${entry.tokenResponse.tokenType}, request ${pending.key.type}`);
    }
    return pending.client.finalize(entry.tokenResponse);
}

async function cmdGenericBatch(url) {
    const dir = await check('directory is served', () => getDirectory(url));
    if (!dir) return;
    const keys = await check('directory lists keys of token types 1 and 2 (privacypass-ts batches those two)', () => {
        const ks = [
            ...directoryKeys(dir.body, TOKEN_TYPE).map((k) => ({ type: TOKEN_TYPE, bytes: k.spki, text: k['token-key'] })),
            ...directoryKeys(dir.body, VOPRF_TOKEN_TYPE).map((k) => ({ type: VOPRF_TOKEN_TYPE, bytes: k.spki, text: k['token-key'] })),
        ];
        if (!ks.some((k) => k.type === TOKEN_TYPE) || !ks.some((k) => k.type === VOPRF_TOKEN_TYPE)) {
            throw new Error(JSON.stringify(dir.body));
        }
        return ks;
    });
    if (!keys) return;
    const issuerUrl = new URL(dir.body['issuer-request-uri'] ?? '/token-request', url);
    const taken = new Set();
    for (const k of keys) {
        const id = await sha256(k.bytes);
        k.truncatedId = id[id.length - 1];
        taken.add(k.truncatedId);
    }
    const unknownId = [...Array(256).keys()].find((b) => !taken.has(b));
    const type2 = keys.find((k) => k.type === TOKEN_TYPE);
    const type1 = keys.find((k) => k.type === VOPRF_TOKEN_TYPE);
    console.log(`# generic batch keys: ${keys.map((k) => `type ${k.type} id ${k.truncatedId}`).join(', ')}; unknown id ${unknownId}`);
    const origin = new Origin(BlindRSAMode.PSS);
    const genericClient = new genericBatched.Client();

    // 1. Every listed key of types 2 and 1, two tokens each, interleaved 2,1,2,1,...;
    //    each token on its own challenge (half of them with an empty redemption context).
    const byType = [TOKEN_TYPE, VOPRF_TOKEN_TYPE].map((t) => keys.filter((k) => k.type === t));
    const width = Math.max(...byType.map((ks) => ks.length));
    const mixed = [];
    for (let round = 0; round < 2; round++) {
        for (let i = 0; i < width; i++) {
            for (const ks of byType) if (ks[i]) mixed.push(ks[i]);
        }
    }
    const pending = await check(`privacypass-ts builds a generic batch of ${mixed.length} TokenRequests (types ${mixed.map((k) => k.type).join(',')})`, () =>
        Promise.all(
            mixed.map((k, i) =>
                pendingRequest(k, origin.createTokenChallenge(ISSUER_NAME, i % 2 === 0 ? randomContext() : new Uint8Array(0))),
            ),
        ),
    );
    if (!pending) return;
    const batch = genericClient.createTokenRequest(pending.map((p) => p.request));
    const batchBytes = batch.serialize();
    const layout = await check('its GenericBatchTokenRequest bytes have our layout: shortest <V> byte length || TokenRequests, token_type once each', () => {
        const parsed = parseGenericRequestBytes(batchBytes);
        const types = parsed.entries.map((e) => e.type).join(',');
        const want = mixed.map((k) => k.type).join(',');
        if (types !== want) throw new Error(`entries ${types}, want ${want}`);
        parsed.entries.forEach((e, i) => {
            if (e.truncatedId !== mixed[i].truncatedId) throw new Error(`entry ${i} names key ${e.truncatedId}, want ${mixed[i].truncatedId}`);
        });
        return parsed;
    });
    console.log(
        `# request: ${batchBytes.length} bytes, <V> ${layout?.prefix ?? '?'}, first entry starts ${hex(batchBytes.subarray(layout ? layout.prefix.length / 2 : 0, (layout ? layout.prefix.length / 2 : 0) + 4))}`,
    );
    if (!layout) return;
    const res = await check(`/token-request answers the generic batch: 200 ${GENERIC_RESPONSE_TYPE}`, async () => {
        const r = await postGenericBatch(issuerUrl, batchBytes);
        if (r.status !== 200 || r.contentType !== GENERIC_RESPONSE_TYPE) {
            throw new Error(`HTTP ${r.status} ${r.contentType}: ${Buffer.from(r.bytes).toString().slice(0, 200)}`);
        }
        return r;
    });
    if (!res) return;
    const ours = await check('the response bytes: shortest <V> byte length || present u8 || token_type u16 || TokenResponse, every entry present, in request order', () => {
        const parsed = parseGenericResponseBytes(res.bytes);
        const got = describeEntries(parsed.entries);
        const want = describeEntries(mixed.map((k) => ({ type: k.type })));
        if (got !== want) throw new Error(`entries ${got}, want ${want}`);
        return parsed;
    });
    console.log(`# response: ${res.bytes.length} bytes, <V> ${ours?.prefix ?? '?'}, first entry starts ${hex(res.bytes.subarray(ours ? ours.prefix.length / 2 : 0, (ours ? ours.prefix.length / 2 : 0) + 4))}`);
    const tsRes = await check("privacypass-ts's genericBatched Client decodes our GenericBatchTokenResponse (one present entry per request)", () => {
        const r = genericClient.deserializeTokenResponse(res.bytes);
        if (r.tokenResponses.length !== pending.length) throw new Error(`${r.tokenResponses.length} entries, want ${pending.length}`);
        const absent = r.tokenResponses.findIndex((e) => e.tokenResponse === null);
        if (absent >= 0) throw new Error(`entry ${absent} absent`);
        return r;
    });
    if (!tsRes) return;
    const tokens = [];
    for (const [i, p] of pending.entries()) {
        const what = `batch entry ${i} (type ${p.key.type}) finalizes with privacypass-ts (${p.key.type === TOKEN_TYPE ? 'RSA signature' : 'DLEQ proof'} verified)`;
        const token = await check(what, () => finalizeEntry(p, tsRes.tokenResponses[i]));
        if (token) tokens.push({ i, p, token });
    }
    for (const { i, p, token } of tokens) {
        await check(`batch entry ${i} (type ${p.key.type}): token key id is SHA-256 of its directory token-key`, async () =>
            sameBytes(token.authInput.tokenKeyId, await sha256(p.key.bytes)),
        );
        await check(`the daemon redeems batch token ${i} (type ${p.key.type})`, async () =>
            expectSuccess(await redeem(url, b64u(token.serialize()), b64u(p.challenge.serialize()))),
        );
    }
    for (const { i, p, token } of tokens) {
        await check(`the daemon refuses batch token ${i} (type ${p.key.type}) again (403, -32021)`, async () =>
            expectDoubleSpend(await redeem(url, b64u(token.serialize()), b64u(p.challenge.serialize()))),
        );
    }

    // 2. Some entries name a key the issuer does not have: 206, those entries absent.
    const partial = await check(
        `privacypass-ts builds a generic batch [type 2, type 2 unknown key ${unknownId}, type 1, type 1 unknown key ${unknownId}]`,
        async () => {
            const c = [0, 1, 2, 3].map(() => origin.createTokenChallenge(ISSUER_NAME, randomContext()));
            const good2 = await pendingRequest(type2, c[0]);
            const good1 = await pendingRequest(type1, c[2]);
            return {
                pending: [good2, null, good1, null],
                requests: [
                    good2.request,
                    await unknownKeyRequest(type2, c[1], unknownId),
                    good1.request,
                    await unknownKeyRequest(type1, c[3], unknownId),
                ],
            };
        },
    );
    if (partial) {
        const bytes = genericClient.createTokenRequest(partial.requests).serialize();
        const r = await check(`/token-request answers it 206 ${GENERIC_RESPONSE_TYPE}`, async () => {
            const r = await postGenericBatch(issuerUrl, bytes);
            if (r.status !== 206 || r.contentType !== GENERIC_RESPONSE_TYPE) {
                throw new Error(`HTTP ${r.status} ${r.contentType}: ${Buffer.from(r.bytes).toString().slice(0, 200)}`);
            }
            return r;
        });
        if (r) {
            const parsed = await check('the 206 body: entries 1 and 3 absent (a single 0x00 octet each), 0 and 2 present', () => {
                const p = parseGenericResponseBytes(r.bytes);
                const got = describeEntries(p.entries);
                if (got !== '0x0002,absent,0x0001,absent') throw new Error(`entries ${got}`);
                return p;
            });
            console.log(`# 206 response: ${r.bytes.length} bytes, <V> ${parsed?.prefix ?? '?'}, entries ${parsed ? describeEntries(parsed.entries) : '?'}`);
            const tsPartial = await check("privacypass-ts's genericBatched Client decodes the 206 body: entries 1 and 3 null", () => {
                const t = genericClient.deserializeTokenResponse(r.bytes);
                const got = t.tokenResponses.map((e) => (e.tokenResponse === null ? 'null' : e.tokenResponse.tokenType)).join(',');
                if (got !== '2,null,1,null') throw new Error(`entries ${got}`);
                return t;
            });
            if (tsPartial) {
                for (const i of [0, 2]) {
                    const p = partial.pending[i];
                    const token = await check(`206 entry ${i} (type ${p.key.type}) finalizes with privacypass-ts`, () =>
                        finalizeEntry(p, tsPartial.tokenResponses[i]),
                    );
                    if (!token) continue;
                    const tokenText = b64u(token.serialize());
                    const challengeText = b64u(p.challenge.serialize());
                    await check(`the daemon redeems 206 entry ${i}'s token (type ${p.key.type})`, async () =>
                        expectSuccess(await redeem(url, tokenText, challengeText)),
                    );
                    await check(`the daemon refuses 206 entry ${i}'s token again (403, -32021)`, async () =>
                        expectDoubleSpend(await redeem(url, tokenText, challengeText)),
                    );
                }
            }
        }
    }

    // 3. Every entry names an unknown key: nothing issued, 400.
    await check(`/token-request answers 400 to a generic batch whose every entry names unknown key ${unknownId}`, async () => {
        const requests = [
            await unknownKeyRequest(type1, origin.createTokenChallenge(ISSUER_NAME, randomContext()), unknownId),
            await unknownKeyRequest(type2, origin.createTokenChallenge(ISSUER_NAME, randomContext()), unknownId),
        ];
        const r = await postGenericBatch(issuerUrl, genericClient.createTokenRequest(requests).serialize());
        console.log(`# all refused -> HTTP ${r.status} ${r.contentType} (${r.bytes.length} bytes)`);
        if (r.status !== 400) throw new Error(`HTTP ${r.status} ${r.contentType}`);
    });
}

async function main() {
    const [cmd, ...args] = process.argv.slice(2);
    if (cmd === 'client' && args.length === 1) await cmdClient(args[0]);
    else if (cmd === 'ts-issue' && (args.length === 1 || args.length === 2)) await cmdTsIssue(args[0], args[1]);
    else if (cmd === 'redeem-ts' && args.length === 2) await cmdRedeemTs(args[0], args[1]);
    else if (cmd === 'voprf-client' && args.length === 1) await cmdVoprfClient(args[0]);
    else if (cmd === 'voprf-ts-issue' && (args.length === 1 || args.length === 2)) await cmdVoprfTsIssue(args[0], args[1]);
    else if (cmd === 'redeem-ts-voprf' && args.length === 2) await cmdRedeemTsVoprf(args[0], args[1]);
    else if (cmd === 'generic-batch' && args.length === 1) await cmdGenericBatch(args[0]);
    else {
        console.error(
            'usage: privacypass-ts.mjs client URL | ts-issue OUTDIR [KEYSDIR] | redeem-ts URL OUTDIR |\n' +
                '       voprf-client URL | voprf-ts-issue OUTDIR [KEYSDIR] | redeem-ts-voprf URL OUTDIR |\n' +
                '       generic-batch URL',
        );
        process.exit(2);
    }
    console.log(`# ${cmd} done: ${passed} ok, ${failed} not ok`);
    process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

main().catch((e) => {
    console.log(`not ok - unexpected error: ${e?.stack ?? e}`);
    process.exit(1);
});
