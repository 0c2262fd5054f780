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
// All traffic goes to URL, which run.sh points at 127.0.0.1.

import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
    AuthorizationHeader,
    WWWAuthenticateHeader,
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

async function main() {
    const [cmd, ...args] = process.argv.slice(2);
    if (cmd === 'client' && args.length === 1) await cmdClient(args[0]);
    else if (cmd === 'ts-issue' && (args.length === 1 || args.length === 2)) await cmdTsIssue(args[0], args[1]);
    else if (cmd === 'redeem-ts' && args.length === 2) await cmdRedeemTs(args[0], args[1]);
    else if (cmd === 'voprf-client' && args.length === 1) await cmdVoprfClient(args[0]);
    else if (cmd === 'voprf-ts-issue' && (args.length === 1 || args.length === 2)) await cmdVoprfTsIssue(args[0], args[1]);
    else if (cmd === 'redeem-ts-voprf' && args.length === 2) await cmdRedeemTsVoprf(args[0], args[1]);
    else {
        console.error(
            'usage: privacypass-ts.mjs client URL | ts-issue OUTDIR [KEYSDIR] | redeem-ts URL OUTDIR |\n' +
                '       voprf-client URL | voprf-ts-issue OUTDIR [KEYSDIR] | redeem-ts-voprf URL OUTDIR',
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
