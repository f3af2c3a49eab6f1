"""Examples for the OpenAPI document of the importer endpoints: real answers of the demo ledger (``trace
demo``, anchored on a local chain), shortened where a list repeats itself. Data only.

``EPCIS_DOCUMENT`` shows one event of the lineage with its Event Hash ID as ``eventID`` and the master data
of the places it names; the real document has every event of the lineage and every place and party."""

from __future__ import annotations

import copy
from typing import Any

# An officer's certification of the demo's vegetable lot, as the certification API and the bundle show it.
MESSAGE_EXAMPLE: dict[str, Any] = {
    "lot": "0xa4a6d84f67f4062882b7ae6e53bdc08f7034c9c2c77b710b713c63cea1aac68e",
    "certificateHash": "0xbd1f9715ebbb562e79d309738a432be5e1ca6c33dd58c343d99fd1171e6c7c63",
    "authority": "0x8c3fad04639c0b779714e0bfbed8a04deb3bb77bd633e76ae77a667a11b8f76d",
    "officer": "0xFcCA92066a6808b82A426541a4ac91c4d0Fb2372",
    "expires": 1826899095,
    "nonce": 0,
    "deadline": 1795366699,
}
CERTIFICATE_EXAMPLE: dict[str, Any] = {
    "v": 1,
    "lot": "NSN-VEG-2609-01",
    "authority": "LAO-NONGSANIT",
    "standard": "Organic Thailand",
    "expires": 1826899095,
    "note": "ขอบเขต: ผักคะน้าและผักกาดหอม แปลง PLOT-NSN-01",
}
TYPED_DATA_EXAMPLE: dict[str, Any] = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
        ],
        "Certification": [
            {"name": "lot", "type": "bytes32"},
            {"name": "certificateHash", "type": "bytes32"},
            {"name": "authority", "type": "bytes32"},
            {"name": "officer", "type": "address"},
            {"name": "expires", "type": "uint64"},
            {"name": "nonce", "type": "uint256"},
            {"name": "deadline", "type": "uint256"},
        ],
    },
    "primaryType": "Certification",
    "domain": {
        "name": "TraceRegistry",
        "version": "1",
        "chainId": 31337,
        "verifyingContract": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    },
    "message": MESSAGE_EXAMPLE,
}
SIGNATURE_EXAMPLE = (
    "0x5680e6f0fca2e660c7c80701691a1fe037f61c2f68907775356579f5436b36d70c1bf63fc6abf9c0e75eb962f2263e19207a4ed3309"
    "4ed5431c670c2d1b9a4941b"
)

VERDICT_VERIFIED: dict[str, Any] = {
    "lot_code": "NSN-VEG-2609-01A",
    "status": "verified",
    "reasons": [],
    "checks": [
        {
            "code": "registry",
            "severity": "ok",
            "message": {
                "th": "ตรวจว่าเป็นสัญญาอัจฉริยะ TraceRegistry ที่เชื่อถือ",
                "en": "Checked the bundle names the trusted TraceRegistry",
            },
            "detail": {"chain_id": 31337, "contract": "0x5fbdb2315678afecb367f032d93f642f64180aa3"},
        },
        {
            "code": "hashes",
            "severity": "ok",
            "message": {
                "th": "คำนวณแฮช CBV 2.0 ของทุกเหตุการณ์ใหม่",
                "en": "Recomputed every CBV 2.0 event hash",
            },
            "detail": {"events": 9},
        },
        {
            "code": "anchors",
            "severity": "ok",
            "message": {
                "th": "ตรวจหลักฐาน Merkle และการบันทึกบนบล็อกเชน",
                "en": "Checked Merkle proofs and on-chain anchors",
            },
            "detail": {},
        },
        {
            "code": "prev_links",
            "severity": "ok",
            "message": {"th": "ตรวจห่วงโซ่แฮชของทุกล็อต", "en": "Checked every lot's hash chain"},
            "detail": {"lots": ["NSN-VEG-2609-01", "NSN-VEG-2609-01A"]},
        },
        {
            "code": "mass_balance",
            "severity": "ok",
            "message": {"th": "ตรวจสมดุลปริมาณ", "en": "Checked mass balance"},
            "detail": {},
        },
        {
            "code": "yield",
            "severity": "ok",
            "message": {"th": "ตรวจผลผลิตต่อไร่", "en": "Checked plausible yield per rai"},
            "detail": {},
        },
        {
            "code": "certifications",
            "severity": "ok",
            "message": {"th": "ใบรับรองที่ใช้ได้ 1 ฉบับ", "en": "1 valid certification(s)"},
            "detail": {"valid": 1},
        },
    ],
    "registry": {"chain_id": 31337, "contract": "0x5fbdb2315678afecb367f032d93f642f64180aa3"},
    "checked_at": "2026-11-22T15:58:21Z",
    "evidence": {
        "events": [
            {
                "event_id": "8d921836-8980-4507-b251-50da5e388b44",
                "kind": "harvest",
                "lots": ["NSN-VEG-2609-01"],
                "event_time": "2026-10-22T23:30:00Z",
                "hash": "0x1858c409d12491386f0568653c29e2fbaa8067c2fef13ebe337a9231db26caca",
                "recomputed": "0x1858c409d12491386f0568653c29e2fbaa8067c2fef13ebe337a9231db26caca",
                "hash_ok": True,
                "hash_id": "ni:///sha-256;1858c409d12491386f0568653c29e2fbaa8067c2fef13ebe337a9231db26caca?ver=CBV2.0",
                "in_lineage": True,
                "prev": [
                    {
                        "lot_code": "NSN-VEG-2609-01",
                        "hash": "0x0ebd564c6a93d036c82e605b09fd7938bb6fb286e0fa9b9e2c9761d9a2c2be84",
                        "found": True,
                    }
                ],
                "anchor": {
                    "root": "0xfeb5bfe21670de39f804eba7b2d40af2c13cf6936668eaca3350ad32c66af59f",
                    "proof": [
                        "0xd3966e7ae11662f2f2ac273897ab8c12f6f8bbe1bbef9d1a88c97bcca3679f1b",
                        "0xd6cfce51d3fc853560fde553b7556e72e6ef03edbc3e51ad4b01fcc2ae3f8fb4",
                        "0x13211ad5bf13c45b189a533b680f522c6c6687a61ebb9f7d1c7bdea289d3dd2f",
                        "0xb62ee12507a1a70725b7ca72e567555a765976d8747d28bfe2d8c6de82a517b1",
                        "0x17d8233d17a76e3dcd4209c76173831df3764cb41e9a6312ca4cc02eae7a1f6d",
                    ],
                    "tx_hash": "0xe1c2faaba0583553e7efeba3e51bba31c7e597b57b22153ec3c5fd4858be304f",
                    "block_number": 7,
                    "block_hash": "0x3414773dbe302102ea6edcd10e70e58922b9d51b391e8ae703fb2e17cfaf7c41",
                    "block_time": "2026-11-22T15:58:20Z",
                    "merkle_ok": True,
                    "included": True,
                    "confirmations": 0,
                },
            },
            {
                "event_id": "c29d595c-a0b8-4408-8db0-d612e87efaa7",
                "kind": "packing",
                "lots": ["NSN-VEG-2609-01", "NSN-VEG-2609-01A", "NSN-VEG-2609-01B"],
                "event_time": "2026-10-24T02:30:00Z",
                "hash": "0xcf2db65f4927918ee145d47cb79d2a0d223670098a51d05cd6cce0ac773dac9b",
                "recomputed": "0xcf2db65f4927918ee145d47cb79d2a0d223670098a51d05cd6cce0ac773dac9b",
                "hash_ok": True,
                "hash_id": "ni:///sha-256;cf2db65f4927918ee145d47cb79d2a0d223670098a51d05cd6cce0ac773dac9b?ver=CBV2.0",
                "in_lineage": True,
                "prev": [
                    {
                        "lot_code": "NSN-VEG-2609-01",
                        "hash": "0x4d3928ca073c0731bef858417619c213ecb151394da0e7e2e023b78dfeb68018",
                        "found": True,
                    }
                ],
                "anchor": {
                    "root": "0xfeb5bfe21670de39f804eba7b2d40af2c13cf6936668eaca3350ad32c66af59f",
                    "proof": [
                        "0x5157645607fa94147fea7a813bf16723c20613ab01ae459e8b582e908397eafb",
                        "0xf493335d3e1d052ddea74717b077dd93185bf858ee7d69bb3df4057f46822f8b",
                        "0xf98fd7535fb2a473b6ea6bb4872785d4aef5677ce52d1c49e159fbdba951fda2",
                        "0xff082dca46d4b9a224658ae354db17f89b1bf0f0507b5656e702350ad9859f20",
                        "0xedc9419aeb538805858ff612dd48321bfb7d5ea351368b2ddeb9dd438824238c",
                    ],
                    "tx_hash": "0xe1c2faaba0583553e7efeba3e51bba31c7e597b57b22153ec3c5fd4858be304f",
                    "block_number": 7,
                    "block_hash": "0x3414773dbe302102ea6edcd10e70e58922b9d51b391e8ae703fb2e17cfaf7c41",
                    "block_time": "2026-11-22T15:58:20Z",
                    "merkle_ok": True,
                    "included": True,
                    "confirmations": 0,
                },
            },
        ],
        "mass_balance": [
            {
                "event_id": "8d921836-8980-4507-b251-50da5e388b44",
                "kind": "harvest",
                "event_time": "2026-10-22T23:30:00Z",
                "inputs": [],
                "outputs": [{"lot_code": "NSN-VEG-2609-01", "kg": "1250"}],
                "input_kg": "0",
                "output_kg": "1250",
                "ok": True,
            },
            {
                "event_id": "c29d595c-a0b8-4408-8db0-d612e87efaa7",
                "kind": "transformation",
                "event_time": "2026-10-24T02:30:00Z",
                "inputs": [
                    {"lot_code": "NSN-VEG-2609-01", "kg": "1190", "available_kg": "1190", "checked": True}
                ],
                "outputs": [
                    {"lot_code": "NSN-VEG-2609-01A", "kg": "600"},
                    {"lot_code": "NSN-VEG-2609-01B", "kg": "580"},
                ],
                "input_kg": "1190",
                "output_kg": "1180",
                "ok": True,
            },
        ],
        "yield": [
            {
                "event_id": "8d921836-8980-4507-b251-50da5e388b44",
                "lot_code": "NSN-VEG-2609-01",
                "plot_id": "PLOT-NSN-01",
                "crop": "organic-veg",
                "area_rai": "2.5",
                "harvest_kg": "1250",
                "lot_harvest_kg": "1250",
                "kg_per_rai": "500",
                "ceiling_kg_per_rai": "4500",
                "planted_plot_id": "PLOT-NSN-01",
                "planted_crop": "organic-veg",
                "ok": True,
            }
        ],
        "certifications": [
            {
                "cert_id": "0xc508adc62e8885fd43aa0f8a52e848ec49f844fcdc2c3818add0404969a93a45",
                "event_id": "8ffeafff-e1c6-4481-bef4-39ed49ff9c5c",
                "lot_code": "NSN-VEG-2609-01",
                "standard": "เกษตรอินทรีย์ อปท. (Organic Thailand PGS)",
                "authority": "LAO-NONGSANIT",
                "officer": "0xfcca92066a6808b82a426541a4ac91c4d0fb2372",
                "recovered_signer": "0xfcca92066a6808b82a426541a4ac91c4d0fb2372",
                "issued": "2026-11-22T15:58:20Z",
                "expires": "2027-11-22T15:58:15Z",
                "revoked": None,
                "tx_hash": "0x73dbcc8ae82056822bc2c0a1585a3f49cb274c2e0337739a2bf81e4a1ba738c7",
                "status": "valid",
            }
        ],
    },
}


def _tampered(verified: dict[str, Any]) -> dict[str, Any]:
    """The verified example after one byte of its harvest record was changed: the hash check fails, and with
    it the anchor and the chain links that named the old hash (the evidence shows the two hashes)."""
    tampered = copy.deepcopy(verified)
    tampered.update(
        {
            "status": "failed",
            "checked_at": "2026-11-22T15:58:22Z",
            "reasons": [
                {
                    "code": "hash_mismatch",
                    "check": "hashes",
                    "severity": "error",
                    "event_id": "8d921836-8980-4507-b251-50da5e388b44",
                    "lot_code": None,
                    "message": {
                        "th": "บันทึกการเก็บเกี่ยว 8d921836-8980-4507-b251-50da5e388b44 "
                        "ถูกแก้ไขหลังจากถูกผนึกไว้: ลายนิ้วมือดิจิทัล (แฮช) "
                        "ที่คำนวณจากข้อมูลตอนนี้ไม่ตรงกับที่บันทึกไว้",
                        "en": "The harvest record 8d921836-8980-4507-b251-50da5e388b44 has been changed "
                        "since it was sealed: the digital fingerprint (hash) of what it says now "
                        "differs from the one recorded",
                    },
                    "detail": {
                        "recorded": "0x1858c409d12491386f0568653c29e2fbaa8067c2fef13ebe337a9231db26caca",
                        "recomputed": "0xf69f37b0c811e28f2c7c71db68eaeefa18969feaa2170aa267d049af959e46e8",
                    },
                }
            ],
        }
    )
    for check in tampered["checks"]:
        if check["code"] in ("hashes", "anchors", "prev_links"):
            check["severity"] = "error"
    harvest = tampered["evidence"]["events"][0]
    altered = "f69f37b0c811e28f2c7c71db68eaeefa18969feaa2170aa267d049af959e46e8"
    harvest.update(
        {"recomputed": "0x" + altered, "hash_ok": False, "hash_id": f"ni:///sha-256;{altered}?ver=CBV2.0"}
    )
    harvest["anchor"].update(
        {"block_time": None, "merkle_ok": False, "included": None, "confirmations": None}
    )
    tampered["evidence"].update({"events": [harvest], "mass_balance": [], "yield": []})
    return tampered


VERDICT_TAMPERED: dict[str, Any] = _tampered(VERDICT_VERIFIED)

VERDICT_UNKNOWN_REGISTRY: dict[str, Any] = {
    "lot_code": "NSN-VEG-2609-01A",
    "status": "failed",
    "reasons": [
        {
            "code": "unknown_registry",
            "check": "registry",
            "severity": "error",
            "event_id": None,
            "lot_code": None,
            "message": {
                "th": "หลักฐานนี้อ้างถึงทะเบียน 0x1111111111111111111111111111111111111111 บนเชน "
                "31337 ซึ่งไม่ใช่ทะเบียนที่เชื่อถือ "
                "(0x5FbDB2315678afecb367f032d93F642f64180aa3 บนเชน 31337) "
                "ใครก็ตั้งทะเบียนของตนเองได้ บันทึกในทะเบียนอื่นจึงพิสูจน์อะไรไม่ได้",
                "en": "The bundle names registry 0x1111111111111111111111111111111111111111 on "
                "chain 31337, not the trusted registry "
                "0x5FbDB2315678afecb367f032d93F642f64180aa3 on chain 31337; anyone can set "
                "up a registry of their own, so records in another one prove nothing",
            },
            "detail": {
                "bundle": {"chain_id": 31337, "contract": "0x1111111111111111111111111111111111111111"},
                "trusted": {"chain_id": 31337, "contract": "0x5fbdb2315678afecb367f032d93f642f64180aa3"},
            },
        }
    ],
    "checks": [
        {
            "code": "registry",
            "severity": "error",
            "message": {"th": "ตรวจสัญญาอัจฉริยะที่อ้างถึง", "en": "Checked the registry named"},
            "detail": {},
        }
    ],
    "registry": {"chain_id": 31337, "contract": "0x5fbdb2315678afecb367f032d93f642f64180aa3"},
    "checked_at": "2026-11-22T15:58:22Z",
    "evidence": {"events": [], "mass_balance": [], "yield": [], "certifications": []},
}

# The demo's vegetable harvest as stored, hashed and exported (its eventID is its Event Hash ID).
HARVEST_EPCIS: dict[str, Any] = {
    "type": "ObjectEvent",
    "eventID": "ni:///sha-256;1858c409d12491386f0568653c29e2fbaa8067c2fef13ebe337a9231db26caca?ver=CBV2.0",
    "eventTime": "2026-10-23T06:30:00.000+07:00",
    "eventTimeZoneOffset": "+07:00",
    "quantityList": [
        {
            "epcClass": "https://id.trace.example.th/lot/NSN-VEG-2609-01",
            "quantity": 1250,
            "uom": "KGM",
        }
    ],
    "action": "ADD",
    "bizStep": "creating_class_instance",
    "disposition": "active",
    "readPoint": {"id": "https://id.trace.example.th/place/FARM-NSN-01"},
    "bizLocation": {"id": "https://id.trace.example.th/place/PLOT-NSN-01"},
    "ilmd": {"tt:crop": "organic-veg", "tt:variety": "ผักคะน้าและผักกาดหอม"},
    "tt:kind": "https://thai-trace.org/ns/epcis#harvest",
    "tt:actor": "https://id.trace.example.th/party/F-0001",
    "tt:lat": 15.1108,
    "tt:lon": 103.6163,
    "tt:prev": ["ni:///sha-256;0ebd564c6a93d036c82e605b09fd7938bb6fb286e0fa9b9e2c9761d9a2c2be84?ver=CBV2.0"],
}


PROOF_BUNDLE: dict[str, Any] = {
    "format": "thai-trace-proof-bundle/2",
    "chain_id": 31337,
    "contract": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
    "lot_code": "NSN-VEG-2609-01A",
    "lineage_lots": ["NSN-VEG-2609-01", "NSN-VEG-2609-01A"],
    "generated_at": "2026-11-22T15:58:21+00:00",
    "@context": [
        "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
        {"tt": "https://thai-trace.org/ns/epcis#"},
    ],
    "hash_algorithm": "GS1 CBV 2.0 Event Hash ID (sha-256), anchored as bytes32",
    "merkle": "OpenZeppelin MerkleProof: leaf = keccak256(keccak256(abi.encode(bytes32))), sorted pairs",
    "events": [
        {
            # stored and bundled under its own urn:uuid (the EPCIS export shows the Event Hash ID instead)
            "epcis": {**HARVEST_EPCIS, "eventID": "urn:uuid:8d921836-8980-4507-b251-50da5e388b44"},
            "hash": "0x1858c409d12491386f0568653c29e2fbaa8067c2fef13ebe337a9231db26caca",
            "anchor": {
                "root": "0xfeb5bfe21670de39f804eba7b2d40af2c13cf6936668eaca3350ad32c66af59f",
                "proof": [
                    "0xd3966e7ae11662f2f2ac273897ab8c12f6f8bbe1bbef9d1a88c97bcca3679f1b",
                    "0xd6cfce51d3fc853560fde553b7556e72e6ef03edbc3e51ad4b01fcc2ae3f8fb4",
                    "0x13211ad5bf13c45b189a533b680f522c6c6687a61ebb9f7d1c7bdea289d3dd2f",
                    "0xb62ee12507a1a70725b7ca72e567555a765976d8747d28bfe2d8c6de82a517b1",
                    "0x17d8233d17a76e3dcd4209c76173831df3764cb41e9a6312ca4cc02eae7a1f6d",
                ],
                "tx_hash": "0xe1c2faaba0583553e7efeba3e51bba31c7e597b57b22153ec3c5fd4858be304f",
                "block_number": 7,
                "block_hash": "0x3414773dbe302102ea6edcd10e70e58922b9d51b391e8ae703fb2e17cfaf7c41",
            },
        }
    ],
    "certifications": [
        {
            "id": "0xc508adc62e8885fd43aa0f8a52e848ec49f844fcdc2c3818add0404969a93a45",
            "lot_code": "NSN-VEG-2609-01",
            "authority": "LAO-NONGSANIT",
            "officer": "0xfcca92066a6808b82a426541a4ac91c4d0fb2372",
            "standard": "เกษตรอินทรีย์ อปท. (Organic Thailand PGS)",
            "typed_data": TYPED_DATA_EXAMPLE,
            "signature": SIGNATURE_EXAMPLE,
            "tx_hash": "0x73dbcc8ae82056822bc2c0a1585a3f49cb274c2e0337739a2bf81e4a1ba738c7",
        }
    ],
}

EPCIS_DOCUMENT: dict[str, Any] = {
    "@context": [
        "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
        {"tt": "https://thai-trace.org/ns/epcis#"},
    ],
    "type": "EPCISDocument",
    "schemaVersion": "2.0",
    "creationDate": "2026-11-22T15:58:21.320+00:00",
    "epcisHeader": {
        "epcisMasterData": {
            "vocabularyList": [
                {
                    "type": "urn:epcglobal:epcis:vtype:BusinessLocation",
                    "vocabularyElementList": [
                        {
                            "id": "https://id.trace.example.th/place/PLOT-NSN-01",
                            "attributes": [
                                {
                                    "id": "urn:epcglobal:cbv:mda#name",
                                    "attribute": "Nong Sanit organic plot 1",
                                },
                                {"id": "urn:epcglobal:cbv:mda#city", "attribute": "Chom Phra, Surin"},
                                {"id": "urn:epcglobal:cbv:mda#countryCode", "attribute": "TH"},
                                {"id": "urn:epcglobal:cbv:mda#latitude", "attribute": "15.1108"},
                                {"id": "urn:epcglobal:cbv:mda#longitude", "attribute": "103.6163"},
                            ],
                        }
                    ],
                }
            ]
        }
    },
    "epcisBody": {"eventList": [HARVEST_EPCIS]},
}
