"""bench.stages gives each py-spy sample to the stage of a message it belongs to; a wrong stage
would point a cut at the wrong code."""

from __future__ import annotations

from bench.stages import classify

ROOT = ("_run_module_as_main (<frozen runpy>:198);<module> (controller/__main__.py:5);"
        "run (trio/_core/_run.py:2532);unrolled_run (trio/_core/_run.py:2866)")
SESSION = ("OcppServer._admit (controller/csms/server.py:167);RpcSession.run (controller/csms/rpc.py:105);"
           "RpcSession._read (controller/csms/rpc.py:154);RpcSession._answer (controller/csms/rpc.py:196)")


def test_a_whole_stack_goes_to_its_deepest_stage():
    line = f"{ROOT};{SESSION};SchemaValidator.validate (controller/csms/schemas.py:57) 3"
    assert classify(line) == ("validate", 3)
    assert classify(f"{ROOT};{SESSION} 2") == ("rpc", 2)
    assert classify(f"{ROOT};Deadlines.expire (trio/_core/_run.py:313) 1") == ("scheduler", 1)


def test_coroutine_frames_read_without_the_loop_are_placed_by_their_own_functions():
    unmasking = ("Connection.events (wsproto/connection.py:185);"
                 "XorMaskerSimple.process (wsproto/frame_protocol.py:35) 1")
    assert classify(unmasking) == ("receive", 1)
    sending = ("WebSocketConnection.send_message (trio_websocket/_impl.py:1271);"
               "SocketStream.send_all (trio/_highlevel_socket.py:123) 1")
    assert classify(sending) == ("send", 1)
    assert classify("Transactions.on_meter_values (controller/transactions.py:515) 1") == ("domain", 1)


def test_start_up_and_connecting_are_not_a_message_s_cost():
    importing = ("_run_module_as_main (<frozen runpy>:198);<module> (controller/__main__.py:3);"
                 "_find_and_load (<frozen importlib._bootstrap>:1176) 4")
    assert classify(importing) == ("start-up", 4)
    booting = f"{ROOT};{SESSION};ChargerHandlers.boot_notification (controller/csms/v16/handlers.py:79) 2"
    assert classify(booting) == ("connecting", 2)
    list_sync = f"{ROOT};ChargerJobs._run (controller/charger_jobs.py:60);SessionLink.call (controller/csms/link.py:43) 1"
    assert classify(list_sync) == ("connecting", 1)
