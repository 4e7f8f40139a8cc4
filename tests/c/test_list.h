/*
** test_list.h: every C unit test, as X(name) for TEST(name) in a
** tests/c/test_<module>.c file. main.c includes this list twice, with X
** defined first to declare the tests and then to build the table of them.
** A test missing here does not run: add each new TEST to the list.
*/

/* test_codec.c */
X(codec_varint_roundtrip_boundaries)
X(codec_varint_encoding_is_leb128)
X(codec_varint_accepts_padding)
X(codec_zigzag_extremes)
X(codec_varint_rejects_overlong)
X(codec_varint_rejects_tenth_byte_above_one)
X(codec_varint_truncated)
X(codec_get_u32)
X(codec_get_f64_truncated)
X(codec_get_bytes)
X(codec_get_string_truncated)
X(codec_string_roundtrip)
X(codec_f64_bit_exact)
X(codec_f64_is_little_endian)
X(codec_u32_put_and_patch)
X(codec_writer_growth)
X(codec_writer_refuses_impossible_sizes)
X(codec_begin_seal_open_roundtrip)
X(codec_empty_body_opens)
X(codec_begin_empties_the_writer)
X(codec_detects_every_bit_flip)
X(codec_rejects_wrong_magic)
X(codec_rejects_nonzero_reserved_bytes)
X(codec_rejects_wrong_version)
X(codec_reports_flavour_without_judging)
X(codec_rejects_empty_input)
X(codec_rejects_short_input)
X(codec_check_reports_flavour)

/* test_hash.c */
X(hash_known_answers)
X(hash_is_deterministic)
X(hash_depends_on_seed)
X(hash_prefixes_differ)
X(hash_sees_every_bit)
X(hash_ignores_alignment)

/* test_graph.c */
X(graph_stores_keys_deps_and_payloads)
X(plan_culls_what_outputs_do_not_need)
X(plan_rejects_out_of_range_dependency)
X(plan_detects_cycles)
X(plan_fuses_a_chain_into_one_unit)
X(plan_does_not_fuse_across_outputs_or_fan_out)
X(plan_orders_depth_first)
X(plan_handles_a_million_long_chain_without_recursion)
X(plan_keeps_repeated_inputs_as_slots)

/* test_sched.c */
X(sched_random_graphs_run_every_unit_once)
X(sched_errors_stop_dependents_and_end_the_run)
X(sched_diamond_runs_the_shared_task_once_in_place)
X(sched_spreads_independent_units_over_executors)
X(sched_idle_executor_steals)
X(sched_cancel_hands_out_no_more_runs)
X(sched_running_unit_erred_by_a_failed_input_still_ends_the_run)

/* test_lask.c */
X(lask_strerror_names_every_code)
X(lask_version_string)

/* test_npy.c */
X(npy_dtype_sizes_and_names)
X(npy_header_matches_numpy_bytes)
X(npy_parse_numpy_headers)
X(npy_parse_versions_2_and_3)
X(npy_parse_byte_order)
X(npy_roundtrip_every_dtype_and_shape)
X(npy_header_rejects_bad_arguments)
X(npy_parse_accepts_syntax_variants)
X(npy_parse_truncated_at_every_length)
X(npy_parse_rejects_bad_preambles)
X(npy_parse_rejects_bad_dicts)
X(npy_parse_survives_mutations)

/* test_nd.c */
X(nd_buffers_are_refcounted_and_pooled)
X(nd_broadcast_follows_numpy)
X(nd_eval_broadcasts_and_reads_views)
X(nd_eval_reduce_pairs_blocks_of_a_symmetric_expression)
X(nd_eval_tiles_transposed_operands)
X(nd_programs_are_checked_before_running)
X(nd_reduce_over_axes_with_nan_rules)
X(nd_matmul_matches_a_plain_loop)
X(nd_random_depends_only_on_seed_stream_and_position)
