//! Errors of the `perturb` crate: bad input is reported, never silently repaired, and every
//! message names the offending value.

/// Everything that can go wrong when perturbing a batch.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PerturbError {
    /// An ensemble with no member at all.
    #[error("{role}: the ensemble has no members")]
    EmptyEnsemble {
        /// `"teachers"` or `"student"`.
        role: &'static str,
    },
    /// A member of a Deep Ensemble slice is itself a BatchEnsemble (its forward pass would
    /// expect a tiled batch); pass it as [`Ensemble::BatchEnsemble`](crate::Ensemble) instead.
    #[error("{role}: member {index} is a BatchEnsemble of {members} members, not a plain backbone")]
    NotPlain {
        /// `"teachers"` or `"student"`.
        role: &'static str,
        /// Position in the slice.
        index: usize,
        /// Its ensemble size.
        members: usize,
    },
    /// TDiv-SDiv needs an ordered pair of distinct members.
    #[error("{role}: TDiv-SDiv needs at least 2 members to draw a pair i != j, got {members}")]
    TooFewMembers {
        /// `"teachers"` or `"student"`.
        role: &'static str,
        /// Number of members given.
        members: usize,
    },
    /// TDiv-SDiv shares one pair (i, j) between teachers and student members, so both must
    /// have the same number of members.
    #[error("TDiv-SDiv shares the pair (i, j) between teachers and student: {teachers} teachers vs {student} student members")]
    MemberCountMismatch {
        /// Number of teachers.
        teachers: usize,
        /// Number of student members.
        student: usize,
    },
    /// A member index outside `0..members`.
    #[error("{role}: member {index} out of range for an ensemble of {members}")]
    MemberOutOfRange {
        /// `"teachers"` or `"student"`.
        role: &'static str,
        /// Requested member.
        index: usize,
        /// Ensemble size.
        members: usize,
    },
    /// TDiv-SDiv was given `i == j`.
    #[error("TDiv-SDiv needs i != j, got i = j = {0}")]
    SamePair(usize),
    /// The input batch has an empty dimension (images: `[B, C, H, W]`, points: `[B, d]`).
    #[error("input batch has shape {dims:?}; expected [B, ...] with every dimension >= 1")]
    BadInput {
        /// The shape received.
        dims: Vec<usize>,
    },
    /// The ODS direction `w` does not have shape `[B, K]`.
    #[error("ODS direction w has {got} entries; expected B * K = {batch} * {classes}")]
    DirectionShape {
        /// Entries given.
        got: usize,
        /// Batch size B.
        batch: usize,
        /// Number of classes K.
        classes: usize,
    },
    /// Teachers and student disagree on the number of classes K.
    #[error("teachers have {teachers} classes, the student {student}")]
    ClassMismatch {
        /// K of the teachers.
        teachers: usize,
        /// K of the student.
        student: usize,
    },
    /// A step size or temperature that is not finite and positive.
    #[error("{name} = {value} must be finite and > 0")]
    InvalidParameter {
        /// Parameter name (`eta`, `temperature`).
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// TDiv-SDiv was requested without a student.
    #[error("TDiv-SDiv needs the student network (an unmerged BatchEnsemble), but none was given")]
    MissingStudent,
}
