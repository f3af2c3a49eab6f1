// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title TraceRegistry
/// @notice Anchors Merkle roots of traceability events and records certifications that officers of a local
/// administrative organisation (an "authority", อปท.) sign with their own keys.
///
/// Roles: DEFAULT_ADMIN_ROLE (cold key) manages the other roles and passes to a new holder only in two steps
/// with a delay (AccessControlDefaultAdminRules); REGISTRAR_ROLE creates authorities and proposes each
/// authority's admin, who must accept; ANCHORER_ROLE (the service's hot key) anchors roots. An authority's
/// admin adds and revokes its officers. A certification is judged by whether its officer was valid for the
/// authority at the time it was issued, so revoking a compromised key with a past `effectiveAt` invalidates
/// what was certified after that time and nothing before it; a revocation of a certification made with the
/// officer's key after that time is void too (a thief cannot undo the owner's work).
contract TraceRegistry is AccessControlDefaultAdminRules, EIP712, Nonces {
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    bytes32 public constant ANCHORER_ROLE = keccak256("ANCHORER_ROLE");

    bytes32 public constant CERTIFICATION_TYPEHASH = keccak256(
        "Certification(bytes32 lot,bytes32 certificateHash,bytes32 authority,address officer,uint64 expires,"
        "uint256 nonce,uint256 deadline)"
    );

    /// @notice What an officer signs (EIP-712 primary type). `lot` is keccak256(bytes(lotCode)) and
    /// `authority` keccak256(bytes(authorityCode)); `expires` 0 means the certification never expires.
    struct Certification {
        bytes32 lot;
        bytes32 certificateHash;
        bytes32 authority;
        address officer;
        uint64 expires;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice A recorded certification. `revokedAt` 0 means not revoked; `revokedBy` is who revoked it and
    /// `revokedByAdmin` whether they did so as the authority's admin (else as the issuing officer).
    struct CertificationRecord {
        bytes32 lot;
        bytes32 certificateHash;
        bytes32 authority;
        address officer;
        uint64 expires;
        uint64 issuedAt;
        uint64 revokedAt;
        address revokedBy;
        bool revokedByAdmin;
    }

    struct OfficerTerm {
        uint64 validFrom; // 0: never added
        uint64 revokedAt; // 0: not revoked
        uint64 addedAt; // block time of addOfficer
    }

    struct Authority {
        address admin; // 0: unknown authority
        uint64 adminSince; // block time the current admin took office
        address pendingAdmin; // 0: none proposed
        uint64 addedAt; // block time of addAuthority: adminSince > addedAt once the admin has changed hands
    }

    mapping(bytes32 root => uint64 timestamp) private _anchoredAt;
    mapping(bytes32 authority => Authority) private _authorities;
    mapping(bytes32 authority => mapping(address officer => OfficerTerm)) private _officers;
    mapping(bytes32 id => CertificationRecord) private _certifications;

    event Anchored(bytes32 indexed root, uint32 count, uint64 timestamp);
    event AuthorityAdded(bytes32 indexed authority, address indexed admin);
    event AuthorityAdminProposed(bytes32 indexed authority, address indexed currentAdmin, address indexed proposed);
    event AuthorityAdminChanged(bytes32 indexed authority, address indexed previousAdmin, address indexed newAdmin);
    event OfficerAdded(bytes32 indexed authority, address indexed officer, uint64 validFrom);
    event OfficerRevoked(bytes32 indexed authority, address indexed officer, uint64 effectiveAt);
    event Certified(
        bytes32 indexed id,
        bytes32 indexed lot,
        bytes32 indexed authority,
        address officer,
        bytes32 certificateHash,
        uint64 expires
    );
    event Revoked(bytes32 indexed id, address by, string reason);
    event NonceCancelled(address indexed account, uint256 nonce);

    error ZeroAddress();
    error EmptyRoot();
    error EmptyBatch();
    error AuthorityExists(bytes32 authority);
    error UnknownAuthority(bytes32 authority);
    error NotAuthorityAdmin(bytes32 authority, address account);
    error AlreadyAuthorityAdmin(bytes32 authority, address account);
    error NotPendingAuthorityAdmin(bytes32 authority, address account);
    error OfficerExists(bytes32 authority, address officer);
    error UnknownOfficer(bytes32 authority, address officer);
    error OfficerAlreadyRevoked(bytes32 authority, address officer, uint64 revokedAt);
    error RevocationInFuture(uint64 effectiveAt);
    error RevocationBeforeValidFrom(uint64 effectiveAt, uint64 validFrom);
    error SignatureExpired(uint256 deadline);
    error CertificationExpired(uint64 expires);
    error InvalidSignature(address officer);
    error NotAnOfficer(bytes32 authority, address officer);
    error AlreadyCertified(bytes32 id);
    error UnknownCertification(bytes32 id);
    error AlreadyRevoked(bytes32 id);
    error NotAllowedToRevoke(bytes32 id, address account);

    /// @param adminDelay seconds a DEFAULT_ADMIN_ROLE transfer waits before the new admin can accept it
    /// @param admin the cold key holding DEFAULT_ADMIN_ROLE
    /// @param registrar granted REGISTRAR_ROLE unless the zero address
    /// @param anchorer granted ANCHORER_ROLE unless the zero address
    constructor(uint48 adminDelay, address admin, address registrar, address anchorer)
        AccessControlDefaultAdminRules(adminDelay, admin)
        EIP712("TraceRegistry", "1")
    {
        if (registrar != address(0)) _grantRole(REGISTRAR_ROLE, registrar);
        if (anchorer != address(0)) _grantRole(ANCHORER_ROLE, anchorer);
    }

    // ---------------------------------------------------------------- anchoring

    /// @notice Record `root` (a batch of `count` events) at the current block time. Anchoring a root that is
    /// already anchored changes nothing and returns false, so a retried batch never fails or double-logs.
    function anchor(bytes32 root, uint32 count) external onlyRole(ANCHORER_ROLE) returns (bool newlyAnchored) {
        if (root == bytes32(0)) revert EmptyRoot();
        if (count == 0) revert EmptyBatch();
        if (_anchoredAt[root] != 0) return false;
        uint64 timestamp = uint64(block.timestamp);
        _anchoredAt[root] = timestamp;
        emit Anchored(root, count, timestamp);
        return true;
    }

    /// @notice The block time `root` was anchored at, 0 if never.
    function anchoredAt(bytes32 root) external view returns (uint64) {
        return _anchoredAt[root];
    }

    /// @notice True iff `root` is anchored and `proof` shows `eventHash` is a leaf under it. Leaves follow
    /// OpenZeppelin's StandardMerkleTree: keccak256(bytes.concat(keccak256(abi.encode(eventHash)))).
    function verifyEvent(bytes32 eventHash, bytes32[] calldata proof, bytes32 root) external view returns (bool) {
        if (_anchoredAt[root] == 0) return false;
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(eventHash))));
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    // ---------------------------------------------------------------- authorities and officers

    function addAuthority(bytes32 authority, address admin) external onlyRole(REGISTRAR_ROLE) {
        if (admin == address(0)) revert ZeroAddress();
        Authority storage a = _authorities[authority];
        if (a.admin != address(0)) revert AuthorityExists(authority);
        a.admin = admin;
        a.adminSince = uint64(block.timestamp);
        a.addedAt = uint64(block.timestamp);
        emit AuthorityAdded(authority, admin);
    }

    /// @notice Propose `newAdmin` as the admin of `authority`; it takes office only when it calls
    /// acceptAuthorityAdmin, so the registrar alone cannot take an authority over. The zero address withdraws
    /// the proposal; a new proposal replaces the previous one.
    function proposeAuthorityAdmin(bytes32 authority, address newAdmin) external onlyRole(REGISTRAR_ROLE) {
        Authority storage a = _authorities[authority];
        if (a.admin == address(0)) revert UnknownAuthority(authority);
        if (newAdmin == a.admin) revert AlreadyAuthorityAdmin(authority, newAdmin);
        a.pendingAdmin = newAdmin;
        emit AuthorityAdminProposed(authority, a.admin, newAdmin);
    }

    /// @notice Take office as the admin of `authority`; only its proposed admin may.
    function acceptAuthorityAdmin(bytes32 authority) external {
        Authority storage a = _authorities[authority];
        address sender = _msgSender();
        if (a.pendingAdmin == address(0) || sender != a.pendingAdmin) {
            revert NotPendingAuthorityAdmin(authority, sender);
        }
        address previous = a.admin;
        a.admin = sender;
        a.adminSince = uint64(block.timestamp);
        a.pendingAdmin = address(0);
        emit AuthorityAdminChanged(authority, previous, sender);
    }

    /// @notice The admin address of `authority`, the zero address if unknown.
    function authorityAdmin(bytes32 authority) external view returns (address) {
        return _authorities[authority].admin;
    }

    /// @notice The block time the current admin of `authority` took office, 0 if unknown.
    function authorityAdminSince(bytes32 authority) external view returns (uint64) {
        return _authorities[authority].adminSince;
    }

    /// @notice The block time `authority` was added at, 0 if unknown.
    function authorityAddedAt(bytes32 authority) external view returns (uint64) {
        return _authorities[authority].addedAt;
    }

    /// @notice The proposed next admin of `authority`, the zero address if none.
    function pendingAuthorityAdmin(bytes32 authority) external view returns (address) {
        return _authorities[authority].pendingAdmin;
    }

    /// @notice Add `officer` to `authority`, valid from `validFrom` (0 = now). An officer key, once revoked,
    /// cannot be re-added: its term is history that earlier certifications are judged by; enrol a new key.
    function addOfficer(bytes32 authority, address officer, uint64 validFrom) external {
        _checkAuthorityAdmin(authority);
        if (officer == address(0)) revert ZeroAddress();
        OfficerTerm storage term = _officers[authority][officer];
        if (term.validFrom != 0) revert OfficerExists(authority, officer);
        uint64 from = validFrom == 0 ? uint64(block.timestamp) : validFrom;
        term.validFrom = from;
        term.addedAt = uint64(block.timestamp);
        emit OfficerAdded(authority, officer, from);
    }

    /// @notice Revoke `officer` as of `effectiveAt` (0 = now). A past time is allowed, for a key found to be
    /// compromised since then, but not one before the officer's validFrom; calling again may only move the
    /// time earlier. Revoking "now" an officer whose term has not begun yet ends it at its validFrom, so the
    /// term is empty.
    function revokeOfficer(bytes32 authority, address officer, uint64 effectiveAt) external {
        _checkAuthorityAdmin(authority);
        OfficerTerm storage term = _officers[authority][officer];
        if (term.validFrom == 0) revert UnknownOfficer(authority, officer);
        uint64 at = effectiveAt == 0 ? uint64(block.timestamp) : effectiveAt;
        if (at < term.validFrom) {
            if (effectiveAt != 0) revert RevocationBeforeValidFrom(effectiveAt, term.validFrom);
            at = term.validFrom;
        } else if (at > block.timestamp) {
            revert RevocationInFuture(at);
        }
        if (term.revokedAt != 0 && at >= term.revokedAt) {
            revert OfficerAlreadyRevoked(authority, officer, term.revokedAt);
        }
        term.revokedAt = at;
        emit OfficerRevoked(authority, officer, at);
    }

    /// @notice The officer's term: `validFrom` 0 = never added, `revokedAt` 0 = not revoked, `addedAt` the
    /// block time it was added at.
    function officerStatus(bytes32 authority, address officer)
        external
        view
        returns (uint64 validFrom, uint64 revokedAt, uint64 addedAt)
    {
        OfficerTerm storage term = _officers[authority][officer];
        return (term.validFrom, term.revokedAt, term.addedAt);
    }

    /// @notice Whether `officer` could sign for `authority` at `time`: validFrom <= time < revokedAt.
    function isOfficerAt(bytes32 authority, address officer, uint64 time) public view returns (bool) {
        OfficerTerm storage term = _officers[authority][officer];
        return term.validFrom != 0 && term.validFrom <= time && (term.revokedAt == 0 || time < term.revokedAt);
    }

    // ---------------------------------------------------------------- certifications

    /// @notice The EIP-712 digest of `c`: what the officer signs and the id the certification is recorded under.
    function certificationDigest(Certification calldata c) public view returns (bytes32) {
        // Every member is a static type, so abi.encode(c) is the 7 members as 32-byte words, as EIP-712 wants.
        return _hashTypedDataV4(keccak256(abi.encode(CERTIFICATION_TYPEHASH, c)));
    }

    /// @notice Record a certification signed by `c.officer`. Anyone may relay it: the officer needs no ether.
    function certify(Certification calldata c, bytes calldata signature) external returns (bytes32 id) {
        if (block.timestamp > c.deadline) revert SignatureExpired(c.deadline);
        if (c.expires != 0 && c.expires <= block.timestamp) revert CertificationExpired(c.expires);
        id = certificationDigest(c);
        if (!SignatureChecker.isValidSignatureNow(c.officer, id, signature)) revert InvalidSignature(c.officer);
        if (!isOfficerAt(c.authority, c.officer, uint64(block.timestamp))) {
            revert NotAnOfficer(c.authority, c.officer);
        }
        _useCheckedNonce(c.officer, c.nonce);
        CertificationRecord storage record = _certifications[id];
        // Unreachable while nonces are unique per officer; kept so a record can never be overwritten.
        if (record.issuedAt != 0) revert AlreadyCertified(id);
        record.lot = c.lot;
        record.certificateHash = c.certificateHash;
        record.authority = c.authority;
        record.officer = c.officer;
        record.expires = c.expires;
        record.issuedAt = uint64(block.timestamp);
        emit Certified(id, c.lot, c.authority, c.officer, c.certificateHash, c.expires);
    }

    /// @notice Void the caller's next nonce, so a certification already signed with it can never be recorded
    /// (e.g. a signature handed to a relayer and then regretted). Returns the nonce voided.
    function cancelNonce() external returns (uint256 nonce) {
        nonce = _useNonce(_msgSender());
        emit NonceCancelled(_msgSender(), nonce);
    }

    /// @notice Revoke certification `id`. Allowed to the authority's admin and to the issuing officer while
    /// still an officer of the authority. The record is kept with its revocation time and revoker. A
    /// revocation the officer's key made at or after the officer's own (possibly back-dated) revocation time
    /// is void: isValid ignores it and the authority's admin may revoke again.
    function revoke(bytes32 id, string calldata reason) external {
        CertificationRecord storage record = _certifications[id];
        if (record.issuedAt == 0) revert UnknownCertification(id);
        if (_revocationStands(record)) revert AlreadyRevoked(id);
        address sender = _msgSender();
        bool byAdmin = sender == _authorities[record.authority].admin;
        bool byOfficer =
            sender == record.officer && isOfficerAt(record.authority, sender, uint64(block.timestamp));
        if (!byAdmin && !byOfficer) revert NotAllowedToRevoke(id, sender);
        record.revokedAt = uint64(block.timestamp);
        record.revokedBy = sender;
        record.revokedByAdmin = byAdmin;
        emit Revoked(id, sender, reason);
    }

    /// @notice True iff `id` is recorded, not revoked (a void revocation aside), not expired, and its officer
    /// was valid for its authority when it was issued.
    function isValid(bytes32 id) external view returns (bool) {
        CertificationRecord storage record = _certifications[id];
        if (record.issuedAt == 0 || _revocationStands(record)) return false;
        if (record.expires != 0 && record.expires <= block.timestamp) return false;
        return isOfficerAt(record.authority, record.officer, record.issuedAt);
    }

    function certificationOf(bytes32 id) external view returns (CertificationRecord memory) {
        return _certifications[id];
    }

    // ---------------------------------------------------------------- internal

    function _checkAuthorityAdmin(bytes32 authority) private view {
        address admin = _authorities[authority].admin;
        if (admin == address(0)) revert UnknownAuthority(authority);
        if (_msgSender() != admin) revert NotAuthorityAdmin(authority, _msgSender());
    }

    /// @dev Whether the record's revocation counts: one by the authority's admin always does; one by the
    /// issuing officer only if made before that officer's revocation time, since from then on the key may be
    /// a thief's.
    function _revocationStands(CertificationRecord storage record) private view returns (bool) {
        if (record.revokedAt == 0) return false;
        if (record.revokedByAdmin) return true;
        uint64 officerRevokedAt = _officers[record.authority][record.revokedBy].revokedAt;
        return officerRevokedAt == 0 || record.revokedAt < officerRevokedAt;
    }
}
